from localcluster.schema import validate_dns_label


def test_x() -> None:
    assert validate_dns_label("a", "f") == []
