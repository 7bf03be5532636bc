"""The request history: every Generate request gets a record when it
arrives (or is refused) and its outcome when it ends. Listing and paging
go through the same store as the images."""

from __future__ import annotations

import time

from codex_image_server.errors import FieldViolation, ServiceError, invalid, not_found
from codex_image_server.request.params import GenerateParams, GenerationSpec
from codex_image_server.store import Page, Query, RequestRecord, StoredImage, paging
from codex_image_server.store.metadata import MetadataStore
from codex_image_server.store.records import STATUSES, Admission, KeyLoad, SameId

# A refused request's prompt may be anything (a flood, a probe, an over-quota
# retry): its record keeps a short prefix, enough to recognise it.
REFUSED_PROMPT_KEPT = 100


def now_ms() -> int:
    return int(time.time() * 1000)


class History:
    def __init__(self, metadata: MetadataStore):
        self._meta = metadata
        interrupted = metadata.end_interrupted(now_ms())
        self.interrupted_at_start = interrupted

    def begin(
        self,
        spec: GenerationSpec,
        key_name: str,
        surface: str,
        arrived_ms: int,
        admission: Admission | None = None,
        *,
        fingerprint: str = "",
        same_id: SameId | None = None,
    ) -> int:
        """The running request's row (if `admission` and `same_id` let it in); returns its
        sequence number."""
        return self._meta.begin_request(
            RequestRecord(
                seq=0,
                request_id=spec.request_id,
                status="running",
                created_unix_ms=arrived_ms,
                key_name=key_name,
                surface=surface,
                prompt=spec.prompt,
                count=spec.count,
                requested_size=spec.size.requested,
                resolved_size=spec.size.text,
                aspect=spec.aspect,
                quality=spec.quality,
                output_format=spec.output_format,
                reference_count=len(spec.references),
                fingerprint=fingerprint,
            ),
            admission,
            same_id,
        )

    def images(self, record: RequestRecord) -> list[StoredImage] | None:
        """The images a finished request made, in its order; None when any is gone."""
        by_id = {image.id: image for image in self._meta.images_of_request(record.seq)}
        if any(image_id not in by_id for image_id in record.image_ids):
            return None
        return [by_id[image_id] for image_id in record.image_ids]

    def refused(
        self,
        request_id: str,
        params: GenerateParams,
        key_name: str,
        surface: str,
        arrived_ms: int,
        error: ServiceError,
    ) -> None:
        """A request that never ran (bad input, full queue, a key over its limit)."""
        self._meta.begin_request(
            RequestRecord(
                seq=0,
                request_id=request_id,
                status="refused",
                created_unix_ms=arrived_ms,
                key_name=key_name,
                surface=surface,
                prompt=params.prompt[:REFUSED_PROMPT_KEPT],
                count=params.count,
                requested_size=params.size[:64],
                aspect=params.aspect[:64],
                quality=params.quality[:64],
                output_format=params.output_format[:64],
                reference_count=len(params.references),
                ended_unix_ms=now_ms(),
                error_reason=error.reason,
                error_message=error.message[:1000],
                duration_ms=max(0, now_ms() - arrived_ms),
            )
        )

    def finish(
        self,
        seq: int,
        status: str,
        error: ServiceError | None,
        *,
        duration_ms: int,
        queue_wait_ms: int,
        codex_ms: int,
        accounts: tuple[str, ...],
        image_ids: tuple[str, ...],
        now: bool = False,
    ) -> None:
        """`now`: written before this returns (or UNAVAILABLE), for an outcome
        the caller is told next; otherwise possibly once the database answers."""
        write = self._meta.finish_request_now if now else self._meta.finish_request
        write(
            seq,
            status=status,
            error_reason=error.reason if error else "",
            error_message=error.message[:1000] if error else "",
            ended_unix_ms=now_ms(),
            duration_ms=duration_ms,
            queue_wait_ms=queue_wait_ms,
            codex_ms=codex_ms,
            accounts=accounts,
            image_ids=image_ids,
            image_count=len(image_ids),
        )

    def get(
        self, request_id: str, owner: str | None = None
    ) -> tuple[RequestRecord, list[StoredImage]]:
        record = self._meta.get_request(request_id, owner) if request_id else None
        if record is None:
            raise not_found(f"request {request_id[:80]!r}")
        return record, self._meta.images_of_request(record.seq)

    def list(self, query: Query) -> Page:
        if query.status and query.status not in STATUSES:
            raise invalid(
                [
                    FieldViolation(
                        "status", f"must be one of {', '.join(STATUSES)}", "INVALID_STATUS"
                    )
                ]
            )
        return paging.page(
            "requests",
            query,
            self._meta.list_requests,
            lambda r: paging.Cursor(r.created_unix_ms, str(r.seq)),
            self._meta.page_secret(),
        )

    def key_load(self, key_name: str, since_ms: int) -> KeyLoad:
        return self._meta.key_load(key_name, since_ms)
