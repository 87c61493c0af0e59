"""The AsyncAPI 3 document of the bus, generated from the message models.

`python -m servicekit.messages.asyncapi` writes `docs/asyncapi.yaml`; with `--check` it writes
nothing and exits 1 when the committed document is not what the models generate (`dev.py
check` runs it). It is to the bus what the OpenAPI schema is to the HTTP API: one channel per
subject (`turnstile.<type>`, see `servicekit.bus`), one message per type, its payload the
envelope with `data` the model's JSON Schema, and the service that sends it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec

from servicekit.bus import DEFAULT_SUBJECT_PREFIX, DUPLICATE_WINDOW_SECONDS
from servicekit.messages.envelope import Envelope
from servicekit.messages.examples import EXAMPLES
from servicekit.messages.models import MESSAGE_MODELS, Message

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
SCHEMAS = "#/components/schemas/"
EXAMPLE_TIME = dt.datetime(2030, 6, 1, 18, 30, tzinfo=dt.UTC)

DESCRIPTION = f"""\
The domain messages of Turnstile on NATS JetStream: one stream, one subject per message
type (`{DEFAULT_SUBJECT_PREFIX}.<type>`). Producers write each message to their outbox in the
transaction of the change it describes; a relay publishes it after commit with `Nats-Msg-Id`
set to the envelope id, so a republication within {DUPLICATE_WINDOW_SECONDS // 60} minutes is
dropped by the broker. Consumers are durable pull consumers that handle each id once.

Compatibility: a consumer ignores fields it does not know (a newer producer may add some); a
field added later has a default; a declared field that is missing or of the wrong type makes
the message poison (dead-lettered, never retried). Generated from `servicekit.messages`; do
not edit by hand."""


def _channel_id(message_type: str) -> str:
    head, _, tail = message_type.partition(".")
    return head + tail.title().replace("_", "")


def _envelope_schema(model: type[Message], envelope: dict[str, Any]) -> dict[str, Any]:
    properties = dict(envelope["properties"])
    properties["type"] = {"type": "string", "const": model.TYPE}
    properties["version"] = {"type": "integer", "const": model.VERSION, "default": 1}
    properties["data"] = {"$ref": f"{SCHEMAS}{model.__name__}"}
    return {**envelope, "title": f"{model.TYPE} envelope", "properties": properties}


def _example_envelope(model: type[Message], example: Message) -> Any:
    return msgspec.to_builtins(
        Envelope(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"turnstile:{model.TYPE}"),
            type=model.TYPE,
            occurred_at=EXAMPLE_TIME,
            producer=model.PRODUCER,
            version=model.VERSION,
            data=example,
        )
    )


def document() -> dict[str, Any]:
    (envelope_ref, *_), schemas = msgspec.json.schema_components(
        [Envelope[dict[str, Any]], *MESSAGE_MODELS], ref_template=SCHEMAS + "{name}"
    )
    envelope = schemas.pop(envelope_ref["$ref"].removeprefix(SCHEMAS))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in MESSAGE_MODELS:
        key = _channel_id(model.TYPE)
        example = EXAMPLES[model.TYPE]
        messages[key] = {
            "name": model.TYPE,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "format": "uuid",
                        "description": "The envelope id: the broker's de-duplication key.",
                    }
                },
            },
            "payload": _envelope_schema(model, envelope),
            "examples": [{"name": "example", "payload": _example_envelope(model, example)}],
        }
        channels[key] = {
            "address": f"{DEFAULT_SUBJECT_PREFIX}.{model.TYPE}",
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        operations[f"send{key[0].upper()}{key[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"The {model.PRODUCER} service publishes {model.TYPE}.",
            "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
        }
    built = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Turnstile message bus",
            "version": "1",
            "description": "\n\n".join(
                " ".join(paragraph.split()) for paragraph in DESCRIPTION.split("\n\n")
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "development": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The development stack's NATS server (`NATS_URL`).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
    # A copy without shared objects: YAML would write them as anchors and aliases.
    copied: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(built))
    return copied


def render() -> str:
    import yaml

    return str(yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed document is not current"
    )
    parser.add_argument("--output", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    wanted = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != wanted:
            print(
                f"{args.output} is not what the message models generate; run "
                "`python -m servicekit.messages.asyncapi` and commit it",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.write_text(wanted)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
