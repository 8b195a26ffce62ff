"""MLflow's error bodies: `{"error_code", "message"}` with MLflow's status for
each code. MLflow's client retries every 5xx (POSTs too), and reads a body
without `error_code` as an internal error: so under MLflow's prefixes every
refusal, modelog's own included, is answered here in MLflow's words, and a
refusal is never a 5xx."""

import inspect
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from modelog_platform.web import ApiError, invalid_request_message

# MLflow's codes and the status its server answers each with.
STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "NOT_IMPLEMENTED": 501,
    "INTERNAL_ERROR": 500,
}

# A modelog refusal's HTTP status, as the MLflow code that means the same.
CODE_OF_STATUS = {400: "INVALID_PARAMETER_VALUE", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "RESOURCE_DOES_NOT_EXIST", 409: "RESOURCE_CONFLICT", 410: "RESOURCE_DOES_NOT_EXIST",
                  412: "RESOURCE_CONFLICT", 413: "INVALID_PARAMETER_VALUE", 422: "INVALID_PARAMETER_VALUE",
                  429: "REQUEST_LIMIT_EXCEEDED"}


class MlflowError(Exception):
    """A refusal in MLflow's words; `modelog_code` keeps modelog's own reason
    (it is what the refused-write record and the logs name)."""

    def __init__(self, error_code: str, message: str, modelog_code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.error_code, self.message = error_code, message
        self.status = STATUS[error_code]
        self.modelog_code = modelog_code or error_code.lower()
        self.headers = headers


def mlflow_error_of(error: ApiError) -> MlflowError:
    """A modelog refusal (its status, code and message) said in MLflow's terms.
    A modelog 5xx stays an error but is never retried for ever: MLflow's client
    retries 5xx, so only a real internal failure is INTERNAL_ERROR."""
    code = CODE_OF_STATUS.get(error.status, "INTERNAL_ERROR" if error.status >= 500 else "BAD_REQUEST")
    return MlflowError(code, error.message, error.code, error.headers)


def body(error: MlflowError) -> JSONResponse:
    return JSONResponse({"error_code": error.error_code, "message": error.message}, error.status,
                        headers=error.headers)


def install(app: FastAPI, prefixes: tuple[str, ...]) -> None:
    """Under `prefixes`, answer every error as MLflow does; elsewhere leave
    modelog's own handlers (installed before this) as they are."""

    def under(request: Request) -> bool:
        return request.url.path.startswith(prefixes)

    def either(mlflow: Callable[[Request, Exception], MlflowError], native_kind: type):
        native = app.exception_handlers.get(native_kind)

        async def handler(request: Request, error: Exception) -> Response:
            if under(request) or native is None:
                return body(mlflow(request, error))
            answered = native(request, error)
            return await answered if inspect.isawaitable(answered) else answered
        return handler

    def from_validation(request: Request, error: Exception) -> MlflowError:
        assert isinstance(error, RequestValidationError)
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        return MlflowError("INVALID_PARAMETER_VALUE", invalid_request_message(problems), "invalid_request")

    def from_http(request: Request, error: Exception) -> MlflowError:
        assert isinstance(error, HTTPException)
        if error.status_code == 404:
            return MlflowError("ENDPOINT_NOT_FOUND", f"No API endpoint for {request.method} {request.url.path}")
        if error.status_code == 405:
            return MlflowError("ENDPOINT_NOT_FOUND", f"{request.method} is not allowed on {request.url.path}")
        return MlflowError(CODE_OF_STATUS.get(error.status_code, "BAD_REQUEST"), str(error.detail))

    def from_modelog(request: Request, error: Exception) -> MlflowError:
        assert isinstance(error, ApiError)
        return mlflow_error_of(error)

    async def as_is(request: Request, error: Exception) -> Response:
        assert isinstance(error, MlflowError)
        return body(error)

    app.exception_handlers[MlflowError] = as_is
    app.exception_handlers[ApiError] = either(from_modelog, ApiError)
    app.exception_handlers[RequestValidationError] = either(from_validation, RequestValidationError)
    app.exception_handlers[HTTPException] = either(from_http, HTTPException)
