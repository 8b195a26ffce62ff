"""The pure parts of the watcher's follower: which version a lookup's answer
names, and how the change feed's Server-Sent Events are read."""

from modelog.follower import Target, chosen, sse_messages


def artifact(sha256: str) -> dict:
    return {"uri": f"s3://models/{sha256}", "sha256": sha256, "size": 3, "download_url": "https://s3/..."}


def test_a_stage_holding_two_versions_is_served_by_the_newer():
    answer = {"model": "m", "stage": "Production", "seq": 9,
              "versions": [{"version": 4, "artifact": artifact("d4")}, {"version": 3, "artifact": artifact("c3")}]}
    assert chosen(answer) == Target(4, "d4")


def test_an_empty_stage_names_nothing_to_serve():
    assert chosen({"model": "m", "stage": "Production", "seq": 2, "versions": []}) is None


def test_an_alias_names_its_version():
    assert chosen({"model": "m", "alias": "champion", "seq": 5, "version": 2, "artifact": artifact("b2")}) == Target(2, "b2")


def test_feed_messages_keep_their_id_and_joined_data_and_comments_come_alone():
    lines = [": modelog change feed", "", "id: 7,0", "event: StageChanged", "data: {\"a\":", "data: 1}", "",
             ": keep-alive", "", "id: 8,0", "data:{}", ""]
    assert list(sse_messages(iter(lines))) == [
        {"comment": "modelog change feed"},
        {"id": "7,0", "event": "StageChanged", "data": "{\"a\":\n1}"},
        {"comment": "keep-alive"},
        {"id": "8,0", "data": "{}"}]
