"""What the guard tests share: the refusal a statement gets, for reads or writes."""

from __future__ import annotations

import pytest

from sophia_business_intelligence.sql_guard import check_read_only, check_write
from sophia_shared.errors import PolicyError


def refused_read(sql: str, *, dialect: str = "snowflake") -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        check_read_only(sql, dialect=dialect)
    return caught.value


def refused_write(sql: str, *, dialect: str = "snowflake") -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        check_write(sql, dialect=dialect)
    return caught.value
