"""The artifact store failing under a request: S3 down, overloaded or out of
space is the caller's to retry later (503 with Retry-After) or an operator's to
fix (507), never a 500 that reads as a bug. An upload is stored before its
command is published, so a request refused here published nothing."""

import logging

import urllib3
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from minio.error import MinioException, S3Error, ServerError

from modelog_platform.web import error_body

log = logging.getLogger("modelog.registrar")

# What S3 servers say when they are out of space (AWS has no such code; MinIO,
# and SeaweedFS through its MinIO-compatible errors, do).
OUT_OF_SPACE = frozenset({"XMinioStorageFull", "StorageFull", "QuotaExceeded", "XMinioAdminBucketQuotaExceeded"})
# SeaweedFS makes a bucket over its quota read-only, and then refuses every
# write with AccessDenied: the same code as a missing permission, so modelog
# cannot tell "full" from "misconfigured" and says both (503, not 507).
REFUSED_WRITE = "AccessDenied"
RETRY_AFTER_S = 5


def status_of(error: Exception) -> int | None:
    """503 for a store that is away or failing, 507 for one out of space, None
    for anything else (a real bug: left a 500)."""
    if isinstance(error, urllib3.exceptions.HTTPError):  # refused, reset, timed out, retries spent
        return 503
    if isinstance(error, S3Error):
        if error.code in OUT_OF_SPACE:
            return 507
        if error.code == REFUSED_WRITE:  # reads the registrar may not make are answered where they happen
            return 503
        return 503 if error.response is not None and error.response.status >= 500 else None
    if isinstance(error, ServerError):
        return 503 if error.status_code >= 500 else None
    return None


async def store_failed(request: Request, error: Exception) -> JSONResponse:
    status = status_of(error)
    if status is None:
        log.error("artifact store error on %s", request.url.path, exc_info=error)
        return JSONResponse(error_body("internal_error", "the artifact store refused the request"), 500)
    log.warning("artifact store unavailable on %s: %r", request.url.path, error)
    if status == 507:
        code = getattr(error, "code", "")
        return JSONResponse(error_body("artifact_store_full", f"the artifact store is out of space ({code}): "
                                       "an operator must free or add space"), 507)
    if isinstance(error, S3Error) and error.code == REFUSED_WRITE:
        return JSONResponse(error_body("artifact_store_read_only", "the artifact store refused to store the "
                                       "bytes (AccessDenied): its bucket is read-only, as SeaweedFS makes a bucket "
                                       "over its quota, or the registrar's S3 identity may not write; nothing "
                                       "was registered"), 503, headers={"Retry-After": str(RETRY_AFTER_S)})
    return JSONResponse(error_body("artifact_store_unavailable", f"the artifact store is unavailable "
                                   f"({type(error).__name__}); retry later"), 503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    for kind in (urllib3.exceptions.HTTPError, MinioException):
        app.add_exception_handler(kind, store_failed)
