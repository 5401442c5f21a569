"""Request and response shapes of /tickets/batch (bulk create for helpdesk sync).

The request's ``items`` are plain objects at the schema level: each is validated on its own
(:class:`TicketBatchItemSerializer`), so one bad item is rejected in the results while the others are
created. Only the batch itself (not a list, empty, too many items, an item that is not an object) is
refused as a whole (400).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from tickets.api.serializers.fields import StrictCharField, StrictSerializer
from tickets.api.serializers.tickets import TicketCreateSerializer
from tickets.models import TicketStatus

ITEM_FIELDS = (
    "subject, body, requester_email, requester_name, external_id, idempotency_key: as for "
    "POST /tickets; external_id or idempotency_key is required."
)


class TicketBatchItemSerializer(TicketCreateSerializer):
    idempotency_key = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="Per client, like the Idempotency-Key header: a repeat gets the first ticket.",
    )


class TicketBatchInputSerializer(StrictSerializer):
    items = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=settings.API_BATCH_MAX_ITEMS,
        help_text=f"The tickets, at most API_BATCH_MAX_ITEMS (default 100). Each item: {ITEM_FIELDS}",
    )

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = settings.API_BATCH_MAX_ITEMS  # read now: the setting may differ from the schema's
        if len(items) > limit:
            raise serializers.ValidationError(f"At most {limit} items per batch; got {len(items)}.")
        return items


class BatchTicketSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)


class BatchErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    # The error format's name; DRF's metaclass takes declared fields off the class, so it does not
    # shadow Serializer.fields at run time.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )


class BatchItemResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField(help_text="The item's position in the request, from 0.")
    result = serializers.ChoiceField(choices=[("created",) * 2, ("replayed",) * 2, ("rejected",) * 2])
    ticket = BatchTicketSerializer(allow_null=True, help_text="null when rejected.")
    error = BatchErrorSerializer(allow_null=True, help_text="Why it was rejected; null otherwise.")


class TicketBatchOutputSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    replayed = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BatchItemResultSerializer(many=True)
