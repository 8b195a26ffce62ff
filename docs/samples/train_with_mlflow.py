"""A training script as a team using MLflow writes it. modelog appears in one
line: the registry URI. Tracking (runs, metrics, the logged model's files)
stays on the team's MLflow server.

    MLFLOW_TRACKING_URI=<the team's MLflow server> MLFLOW_TRACKING_TOKEN=<a modelog token> \\
        python train_with_mlflow.py <registrar URL> MODEL train    # log, register, ask for Production
    ... python train_with_mlflow.py <registrar URL> MODEL serve    # load models:/MODEL/Production, predict
"""

import sys

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression


def data():
    return make_classification(n_samples=1000, n_features=6, random_state=3)


def train(name: str) -> None:
    features, labels = data()
    mlflow.set_experiment("churn")
    with mlflow.start_run():
        model = LogisticRegression(max_iter=500).fit(features, labels)
        mlflow.log_metric("accuracy", model.score(features, labels))
        logged = mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                          input_example=features[:2])
    version = str(logged.registered_model_version)
    print(f"registered {name} version {version}")
    client = MlflowClient()
    moved = client.transition_model_version_stage(name, version, "Staging")
    print(f"{name} v{moved.version} is in {moved.current_stage}")
    try:
        client.transition_model_version_stage(name, version, "Production", archive_existing_versions=True)
        print(f"{name} v{version} is in Production")
    except MlflowException as refused:
        print(f"Production refused for now: {refused.message}")  # the message names MLflow's error code


def serve(name: str) -> None:
    features, _ = data()
    model = mlflow.sklearn.load_model(f"models:/{name}/Production")
    print(f"models:/{name}/Production predicts {[int(p) for p in model.predict(features[:8])]} for the first 8 customers")


if __name__ == "__main__":
    registrar, name, what = sys.argv[1:4]
    mlflow.set_registry_uri(registrar)  # the one line: the registry is modelog
    train(name) if what == "train" else serve(name)
