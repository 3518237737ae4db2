"""``riskctl train fraud``: a point-in-time training set, the fitted scorer, a new challenger.

The training cut-off is the time of the file's last payment (the moment the job stands at): only
labels known by then are used. The scorer is logged as one pyfunc through the registry package,
with its metrics, thresholds, feature service and training-data hash as version tags, and the
thresholds as a ``thresholds.yaml`` artifact of its run: they live with the model version, never
in tracked configuration (a task's ``configs/`` are its image's).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from decisioning.adapters.mlflow.fraud_pyfunc import (
    MODEL_ARTIFACT,
    FraudPyfunc,
    decisions_frame,
    save_fraud_scorer,
)
from decisioning.adapters.mlflow.model_store import FEATURE_SERVICE_TAG
from decisioning.fraud.config import FraudConfig, load_fraud_config
from decisioning.fraud.model import ANOMALY_FEATURE, FraudScorer, fit_fraud_scorer
from decisioning.fraud.reason_codes import load_reason_codes
from decisioning.fraud.thresholds import Thresholds, write_thresholds
from decisioning.settings import Settings
from pipelines.features.jobs import customers_beside
from pipelines.fraud.dataset import (
    FeatureSet,
    check_training_set,
    labels_known_at,
    point_in_time_features,
    split_by_time,
    training_data_hash,
    with_label_times,
)
from pipelines.fraud.metrics import (
    contribution_summary,
    fraud_metrics,
    write_curves,
    write_shap_summary,
)
from pipelines.fraud.reference_drift import DRIFT_TAG, ReferenceDrift, reference_drift
from pipelines.fraud.run_details import confusion_at_actions, log_run_details, scenario_recall
from pipelines.fraud.selection import SELECTION_TAG, Selection, log_selection, select_candidate
from pipelines.ingest import ReadingConfig, load_events, read_table
from pipelines.progress import Progress
from pipelines.quarantine import Quarantine, gate_events, quarantine_path

logger = logging.getLogger(__name__)
THRESHOLDS_ARTIFACT = "thresholds.yaml"

HOLDOUT_MAX_ROWS = 50_000
# Beside the features, the holdout keeps what card precision@k needs; the gates never feed them
# to a model (configs/gates.yaml: holdout.context_columns).
HOLDOUT_CONTEXT = ["card_id", "customer_id", "occurred_at"]
GX_TAG = "gx.training_set"
REQUIREMENTS = (
    "mlflow", "xgboost-cpu", "scikit-learn", "pandas", "numpy", "scipy", "pydantic", "pyyaml",
)  # fmt: skip


@dataclass(frozen=True)
class TrainedFraudModel:
    """The fitted scorer and what training measured, ready for the registry."""

    scorer: FraudScorer
    features: FeatureSet
    holdout: pd.DataFrame
    metrics: dict[str, float]
    tags: dict[str, str]
    contributions: pd.DataFrame
    scored_holdout: pd.DataFrame
    drift: ReferenceDrift
    quarantine: Quarantine | None = None
    # The labelled rows learned from and the validation actions' confusion matrix (MLflow run).
    training_rows: pd.DataFrame | None = None
    confusion: dict[str, int] | None = None
    selection: Selection | None = None
    # Per payment of the validation window: each feature's TreeSHAP value (the summary plot).
    contribution_values: pd.DataFrame | None = None
    feature_values: pd.DataFrame | None = None
    # Recall per simulated fraud scenario on the validation window, when the file names them.
    scenarios: pd.DataFrame | None = None


def load_fraud_settings(settings: Settings) -> tuple[FraudConfig, Path]:
    """The fraud config and the reason-code vocabulary's path from the profile's configs."""
    return (
        load_fraud_config(settings.config_path("configs/fraud.yaml")),
        settings.config_path("configs/reason_codes.yaml"),
    )


@dataclass(frozen=True)
class PeriodFit:
    """The scorer fitted on a period, its validation window, GX summary and model selection."""

    scorer: FraudScorer
    validation: pd.DataFrame
    gate: str
    selection: Selection


def fit_selected(features: FeatureSet, config: FraudConfig, codes_path: Path) -> PeriodFit:
    """GX-check the labelled training rows, split by time, select a candidate and fit it.

    Selection's folds span the whole period, the validation window included: with labels a week
    late, the stretch before that window alone leaves its folds almost no known label. The
    validation figures of a selected model are then slightly optimistic (it was chosen partly
    there); a backtest's test window is never seen by selection.
    """
    split = split_by_time(features.frame, config.validation_share)
    gate = check_training_set(split.train)
    reason_codes = load_reason_codes(codes_path)
    selection = select_candidate(features.frame, features.features, config, reason_codes)
    logger.info("model selection: %s (%s)", selection.chosen, selection.note)
    scorer = fit_fraud_scorer(
        split.history,
        split.train,
        split.validation,
        features.features,
        selection.config(config),
        reason_codes,
    )
    return PeriodFit(scorer, split.validation, gate, selection)


def fit_on_period(
    features: FeatureSet, config: FraudConfig, codes_path: Path
) -> tuple[FraudScorer, pd.DataFrame, str]:
    """``fit_selected`` as a tuple: the scorer, the validation frame and the GX summary."""
    fitted = fit_selected(features, config, codes_path)
    return fitted.scorer, fitted.validation, fitted.gate


def train_fraud_model(
    settings: Settings,
    transactions_path: Path,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
) -> TrainedFraudModel:
    """Read, build features, fit and evaluate; nothing is registered yet."""
    config, codes_path = load_fraud_settings(settings)
    progress(f"reading {transactions_path}")
    reading = reading or ReadingConfig()
    checked = gate_events(
        load_events(transactions_path, "transactions", reading),
        "transactions",
        reading,
        quarantine_path(Path(transactions_path), "transactions"),  # the output is the registry
    )
    transactions = with_label_times(checked.frame, config.label_delay)
    customers_path = customers_beside(transactions_path)
    customers = read_table(customers_path) if customers_path is not None else None
    cutoff = transactions["occurred_at"].max()
    period = transactions[
        transactions["occurred_at"] > cutoff - pd.Timedelta(days=config.training_days)
    ].assign(label=lambda frame: labels_known_at(frame, cutoff))
    progress(f"point-in-time features of {len(period):,} payments")
    features = point_in_time_features(settings, transactions, customers, period)
    progress("selecting and fitting anomaly detector and XGBoost")
    fitted = fit_selected(features, config, codes_path)
    scorer, validation, gate = fitted.scorer, fitted.validation, fitted.gate
    labelled = validation[validation["label"].notna()].reset_index(drop=True)
    scores = scorer.score(labelled)
    scored = labelled.assign(score=scores.score)
    flagged = scorer.decide(labelled, scores)["action"].to_numpy() != "approve"
    metrics = fraud_metrics(scored, flagged, config.card_precision_k)
    train_rows = features.frame[features.frame["occurred_at"] < validation["occurred_at"].min()]
    progress("drift between the training reference and the most recent window")
    drift = reference_drift(train_rows, validation, features.features)
    tags = {
        FEATURE_SERVICE_TAG: features.service,  # what serving reads to pick the service
        "training_data_hash": training_data_hash(
            train_rows[train_rows["label"].notna()], [*features.features, "label"]
        ),
        "training_cutoff": cutoff.isoformat(),
        "validation_window": f"{validation['occurred_at'].min()}/{cutoff}",
        GX_TAG: f"passed: {gate}",  # a failing suite stops training before this point
        DRIFT_TAG: drift.as_tag(),
        **scorer.thresholds.as_tags(),
        SELECTION_TAG: "none" if fitted.selection.chosen is None else fitted.selection.chosen.name,
    }
    if checked.quarantine is not None:
        tags["quarantined_rows"] = str(checked.quarantine.rows)
    return TrainedFraudModel(
        scorer=scorer,
        features=features,
        holdout=_holdout(labelled, features.features),
        metrics=metrics,
        tags=tags,
        contributions=contribution_summary(
            scores.contributions, scorer.reason_codes.code_of_feature
        ),
        scored_holdout=scored,
        drift=drift,
        quarantine=checked.quarantine,
        training_rows=train_rows[train_rows["label"].notna()][
            [*features.features, *HOLDOUT_CONTEXT, "label"]
        ],
        confusion=confusion_at_actions(labelled["label"].to_numpy(), flagged),
        selection=fitted.selection,
        contribution_values=scores.contributions,
        feature_values=labelled[scorer.features].assign(**{ANOMALY_FEATURE: scores.anomaly}),
        scenarios=scenario_recall(labelled, flagged, transactions),
    )


def train_and_register(
    settings: Settings,
    transactions_path: Path,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
) -> tuple[str, TrainedFraudModel]:
    """Train and register ``fraud-detector`` as challenger, its thresholds logged with it.

    Returns the registered version and the trained model.
    """
    from pipelines.monitoring.evidently_reports import save_snapshot
    from registry.models import ModelPackage, pinned_requirements, register_challenger
    from registry.names import FRAUD_DETECTOR
    from registry.tracking import ensure_experiment, mlflow_session

    trained = train_fraud_model(settings, transactions_path, progress, reading)
    progress("registering fraud-detector")
    with tempfile.TemporaryDirectory() as scratch, mlflow_session(settings.mlflow) as client:
        folder = Path(scratch)
        save_fraud_scorer(trained.scorer, folder / "fraud_scorer.pkl")
        example = trained.holdout[trained.scorer.features].head(5).reset_index(drop=True)
        package = ModelPackage(
            python_model=FraudPyfunc(),
            artifacts={MODEL_ARTIFACT: str(folder / "fraud_scorer.pkl")},
            input_example=example,
            output_example=decisions_frame(trained.scorer, example),
            holdout=trained.holdout,
            metrics=_finite(trained.metrics),
            tags=trained.tags,
            pip_requirements=pinned_requirements(REQUIREMENTS),
        )
        experiment = ensure_experiment(client, FRAUD_DETECTOR, settings.mlflow.artifact_root)
        registered = register_challenger(client, FRAUD_DETECTOR, experiment, package)
        for path in write_curves(trained.scored_holdout, folder / "plots"):
            client.log_artifact(registered.run_id, str(path))
        summary = folder / "contribution_summary.csv"
        trained.contributions.to_csv(summary, index=False)
        client.log_artifact(registered.run_id, str(summary))
        # For people: what calibration found, beside the model it belongs to (serving reads the
        # thresholds pickled in the scorer, and the version's threshold.* tags say the same).
        thresholds = folder / THRESHOLDS_ARTIFACT
        write_thresholds(thresholds, trained.scorer.thresholds, registered.version)
        client.log_artifact(registered.run_id, str(thresholds))
        for path in save_snapshot(trained.drift.snapshot, folder / "drift"):
            client.log_artifact(registered.run_id, str(path), "drift")
        if trained.contribution_values is not None and trained.feature_values is not None:
            shap_plot = write_shap_summary(
                trained.contribution_values, trained.feature_values, folder / "shap"
            )
            client.log_artifact(registered.run_id, str(shap_plot))
        if trained.scenarios is not None:
            table = folder / "scenario_recall.csv"
            trained.scenarios.to_csv(table, index=False)
            client.log_artifact(registered.run_id, str(table))
        if trained.selection is not None:
            log_selection(registered.run_id, trained.selection)
        if trained.training_rows is not None and trained.confusion is not None:
            log_run_details(
                registered.run_id,
                load_fraud_settings(settings)[0],
                Path(transactions_path),
                trained.training_rows,
                trained.holdout,
                trained.confusion,
            )
    return registered.version, trained


def thresholds_summary(thresholds: Thresholds) -> str:
    decline = "never" if thresholds.decline is None else f"{thresholds.decline:.4f}"
    share = thresholds.rules_share
    rules = f" (review rules take {share:.2%} of payments first)" if share else ""
    return f"review >= {thresholds.review:.4f}{rules}, decline >= {decline}"


def _holdout(labelled: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The validation rows the promotion gates score both versions on (capped, frauds kept)."""
    holdout = labelled[[*features, *HOLDOUT_CONTEXT, "label"]]
    if len(holdout) > HOLDOUT_MAX_ROWS:
        fraud = holdout[holdout["label"] == 1]
        genuine = holdout[holdout["label"] == 0]
        keep = genuine.sample(n=max(HOLDOUT_MAX_ROWS - len(fraud), 0), random_state=0)
        holdout = pd.concat([fraud, keep]).sort_index()
    return holdout.assign(label=holdout["label"].astype(int)).reset_index(drop=True)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if pd.notna(value)}
