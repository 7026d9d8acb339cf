"""The retrain gate (training.retrain.gate): what a candidate version must keep and win."""

from training.retrain import RECALL_TOLERANCE, gate


def _figures(mrr=0.228, recall=0.111, f1=0.293, feedback=0.30):
    return {
        "catalog_val": {"mrr": mrr, "macro_recall_at_5": recall},
        "tweeteval_val_macro_f1": f1,
        "feedback": {"mrr": feedback},
    }


def test_a_candidate_that_keeps_the_figures_and_learns_the_feedback_is_promoted():
    ok, reasons = gate(_figures(), _figures(mrr=0.226, recall=0.111 - RECALL_TOLERANCE / 2, feedback=0.40))
    assert ok, reasons
    assert len(reasons) == 4 and reasons[-1] == "held-out feedback MRR 0.3000 → 0.4000"


def test_losing_macro_recall_at_5_beyond_its_tolerance_is_rejected():
    ok, reasons = gate(_figures(), _figures(recall=0.111 - 2 * RECALL_TOLERANCE, feedback=0.40))
    assert not ok
    assert any(r.startswith("whole-catalog macro-recall@5 (val side) fell from 0.1110 to 0.0910") for r in reasons)


def test_losing_mrr_or_f1_or_not_learning_is_rejected():
    assert not gate(_figures(), _figures(mrr=0.220, feedback=0.40))[0]
    assert not gate(_figures(), _figures(f1=0.280, feedback=0.40))[0]
    ok, reasons = gate(_figures(), _figures(feedback=0.30))
    assert not ok and "did not improve" in reasons[-1]
    current = _figures()
    del current["feedback"]
    assert not gate(current, _figures(feedback=0.40))[0]
