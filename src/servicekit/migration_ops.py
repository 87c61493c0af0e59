"""Migration operations Django does not have.

Renaming a model's table or a field's column leaves the names PostgreSQL and Django derived
from the old ones on the primary key, unique and NOT NULL constraints, indexes and the id
sequence (`outbox_outboxevent_pkey`, `outbox_outboxevent_event_id_key`, ...). Nothing breaks
(Django looks them up by column), but whoever reads the schema meets the old words.
`RenameDerivedNames` renames them along with the table and columns.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

_CONSTRAINTS = "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass"
_INDEXES = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE i.indrelid = %s::regclass"
)
_SEQUENCES = (
    "SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid"
    " WHERE d.refobjid = %s::regclass AND d.deptype IN ('a', 'i') AND c.relkind = 'S'"
)


class RenameDerivedNames(Operation):
    """Rename the constraints, indexes and sequences of `table` named after its old table
    name or old column names: `<old_table>_<old_column>_key` becomes
    `<new_table>_<new_column>_key`. Run it after the table and columns are renamed; names
    not derived from them (the ones a model's Meta gives) are left alone. Reversible.
    """

    reduces_to_sql = False
    reversible = True

    def __init__(
        self, *, table: str, old_table: str | None = None, columns: dict[str, str] | None = None
    ) -> None:
        self.table = table
        self.old_table = old_table or table
        self.columns = dict(columns or {})

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"table": self.table}
        if self.old_table != self.table:
            kwargs["old_table"] = self.old_table
        if self.columns:
            kwargs["columns"] = self.columns
        return self.__class__.__name__, [], kwargs

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass  # names the model state does not hold

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._rename(schema_editor, table=self.table, old=self.old_table, new=self.table)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        # Runs before the table and columns get their old names back.
        columns = {new: old for old, new in self.columns.items()}
        self._rename(
            schema_editor, table=self.table, old=self.table, new=self.old_table, columns=columns
        )

    def describe(self) -> str:
        return f"Rename constraints, indexes and sequences of {self.table} after its new names"

    def _rename(
        self,
        schema_editor: BaseDatabaseSchemaEditor,
        *,
        table: str,
        old: str,
        new: str,
        columns: dict[str, str] | None = None,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        columns = self.columns if columns is None else columns
        quote = schema_editor.quote_name
        statements = (
            (_CONSTRAINTS, "ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}"),
            # An index or sequence of a renamed constraint has been renamed with it.
            (_INDEXES, "ALTER INDEX {old} RENAME TO {new}"),
            (_SEQUENCES, "ALTER SEQUENCE {old} RENAME TO {new}"),
        )
        for query, rename in statements:
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(query, [quote(table)])
                names = [row[0] for row in cursor.fetchall()]
            for name in names:
                renamed = derived_name(name, old_table=old, new_table=new, columns=columns)
                if renamed is not None:
                    schema_editor.execute(
                        rename.format(table=quote(table), old=quote(name), new=quote(renamed))
                    )


def derived_name(
    name: str, *, old_table: str, new_table: str, columns: dict[str, str]
) -> str | None:
    """`name` with the old table and column names replaced, or None when it does not change.

    Only names that start with the table's name are derived from it; the column, if any,
    comes right after (`_pkey`, `_<column>_key`, `_<column>_not_null`, `_id_seq`).
    """
    prefix = f"{old_table}_"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    for old_column, new_column in columns.items():
        if rest.startswith(f"{old_column}_"):
            rest = new_column + rest[len(old_column) :]
            break
    renamed = f"{new_table}_{rest}"[:63]  # PostgreSQL's identifier length
    return renamed if renamed != name else None
