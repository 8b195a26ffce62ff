"""Fixtures of the end-to-end tests: a client of the test stack, a real model."""

import pickle

import pytest

from modelog.client import Client
from tests.e2e.helpers import token_for


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A real scikit-learn model, trained on synthetic transactions, pickled."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    features, labels = make_classification(n_samples=400, n_features=8, random_state=7)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    path = tmp_path_factory.mktemp("models") / "fraud-detector.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


@pytest.fixture
def client(stack):
    """A training pipeline: it may register and describe models, not approve."""
    client = Client(stack.url("registrar"), stack.url("projector"), token=token_for("ci-pipeline", "publisher"))
    yield client
    client.close()


@pytest.fixture
def admin_client(stack):
    client = Client(stack.url("registrar"), stack.url("projector"), token=token_for("platform-admin", "admin"))
    yield client
    client.close()


@pytest.fixture
def operator(stack):
    """On call: sets traffic splits, rolls back."""
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("olga", "operator")) as olga:
        yield olga
