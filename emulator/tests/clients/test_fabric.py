"""microsoft-fabric-api (Microsoft's Fabric REST SDK) against the emulator: workspaces,
items, Spark Job Definitions with definitions through long-running operations, job run,
poll, cancel and list. The emulator answers every LRO-capable call as a 202 here."""

import base64
import json
import time
import uuid

import pytest
from microsoft_fabric_api import FabricClient
from microsoft_fabric_api.generated.core import models as core_models
from microsoft_fabric_api.generated.sparkjobdefinition import models as sjd_models


@pytest.fixture
def fabric(emu, credential):
    return FabricClient(credential, base_url=emu.url + "/", **emu.kwargs())


@pytest.fixture
def workspace_id(fabric, emu):
    spaces = list(fabric.core.workspaces.list_workspaces())
    (ws,) = [w for w in spaces if w.display_name == emu.workspace]
    return ws.id


def b64(v) -> str:
    if not isinstance(v, bytes):
        v = json.dumps(v).encode()
    return base64.b64encode(v).decode()


def definition(main_py: str, lakehouse_id: str, args: str = ""):
    config = {
        "executableFile": "main.py",
        "defaultLakehouseArtifactId": lakehouse_id,
        "mainClass": "",
        "additionalLakehouseIds": [],
        "retryPolicy": None,
        "commandLineArguments": args,
        "additionalLibraryUris": [],
        "language": "Python",
        "environmentArtifactId": None,
    }
    part = sjd_models.SparkJobDefinitionPublicDefinitionPart
    return sjd_models.SparkJobDefinitionPublicDefinition(
        format="SparkJobDefinitionV2",
        parts=[
            part(path="SparkJobDefinitionV1.json", payload=b64(config), payload_type="InlineBase64"),
            part(path="Main/main.py", payload=b64(main_py.encode()), payload_type="InlineBase64"),
        ],
    )


def lakehouse_id(fabric, workspace_id, name="lake"):
    (lh,) = [l for l in fabric.lakehouse.items.list_lakehouses(workspace_id) if l.display_name == name]
    return lh.id


def test_workspace_and_items(fabric, workspace_id, emu):
    ws = fabric.core.workspaces.get_workspace(workspace_id)
    assert ws.display_name == emu.workspace
    types = {i.type for i in fabric.core.items.list_items(workspace_id)}
    assert "Lakehouse" in types
    lh = lakehouse_id(fabric, workspace_id)
    definition = fabric.lakehouse.items.get_lakehouse_definition(workspace_id, lh)
    assert "lakehouse.metadata.json" in [p.path for p in definition.definition.parts]


def create_sjd(fabric, workspace_id, main_py, args=""):
    lh = lakehouse_id(fabric, workspace_id)
    req = sjd_models.CreateSparkJobDefinitionRequest(
        display_name=f"sdk-{uuid.uuid4().hex[:8]}",
        description="made by the Fabric SDK test",
        definition=definition(main_py, lh, args),
    )
    return fabric.sparkjobdefinition.items.create_spark_job_definition(workspace_id, req)


def test_sjd_create_get_and_update_definition_through_lros(fabric, workspace_id):
    sjd = create_sjd(fabric, workspace_id, "print('v1')\n")
    assert sjd.id and sjd.display_name.startswith("sdk-")
    got = fabric.sparkjobdefinition.items.get_spark_job_definition(workspace_id, sjd.id)
    assert got.id == sjd.id
    listed = [s.id for s in fabric.sparkjobdefinition.items.list_spark_job_definitions(workspace_id)]
    assert sjd.id in listed

    d = fabric.sparkjobdefinition.items.get_spark_job_definition_definition(
        workspace_id, sjd.id, format="SparkJobDefinitionV2"
    )
    parts = {p.path: base64.b64decode(p.payload) for p in d.definition.parts}
    assert parts["Main/main.py"] == b"print('v1')\n"

    lh = lakehouse_id(fabric, workspace_id)
    fabric.sparkjobdefinition.items.update_spark_job_definition_definition(
        workspace_id,
        sjd.id,
        sjd_models.UpdateSparkJobDefinitionDefinitionRequest(definition=definition("print('v2')\n", lh)),
    )
    d = fabric.sparkjobdefinition.items.get_spark_job_definition_definition(
        workspace_id, sjd.id, format="SparkJobDefinitionV2"
    )
    parts = {p.path: base64.b64decode(p.payload) for p in d.definition.parts}
    assert parts["Main/main.py"] == b"print('v2')\n"
    # The generic item routes see the same definition.
    generic = fabric.core.items.get_item_definition(workspace_id, sjd.id, format="SparkJobDefinitionV2")
    assert "Main/main.py" in [p.path for p in generic.definition.parts]


def run(fabric, workspace_id, item_id):
    location = fabric.core.job_scheduler.run_on_demand_item_job(
        workspace_id, item_id, "sparkjob", cls=lambda resp, *_: resp.http_response.headers["Location"]
    )
    return location.rstrip("/").rsplit("/", 1)[1]


def wait(fabric, workspace_id, item_id, job_id, until, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        inst = fabric.core.job_scheduler.get_item_job_instance(workspace_id, item_id, job_id)
        if inst.status in until:
            return inst
        assert time.monotonic() < deadline, f"still {inst.status}"
        time.sleep(0.2)


def test_run_poll_and_list(fabric, workspace_id, emu):
    sjd = create_sjd(
        fabric,
        workspace_id,
        "import os, sys\n"
        "root = os.environ['FABRIC_EMULATOR_LAKEHOUSE_ROOT']\n"
        "open(os.path.join(root, 'Files', 'sdk-run.txt'), 'w').write(' '.join(sys.argv[1:]))\n",
        args="hello from the sdk",
    )
    # Wait the Retry-After the service asks for: the instance is then visible.
    job_id = run(fabric, workspace_id, sjd.id)
    time.sleep(1)
    inst = wait(fabric, workspace_id, sjd.id, job_id, {"Completed", "Failed"})
    assert inst.status == "Completed", inst.failure_reason
    assert (emu.files_dir / "sdk-run.txt").read_text() == "hello from the sdk"
    ids = [j.id for j in fabric.core.job_scheduler.list_item_job_instances(workspace_id, sjd.id)]
    assert job_id in ids


def test_cancel(fabric, workspace_id):
    sjd = create_sjd(fabric, workspace_id, "import time\ntime.sleep(60)\n")
    job_id = run(fabric, workspace_id, sjd.id)
    wait(fabric, workspace_id, sjd.id, job_id, {"InProgress"})
    fabric.core.job_scheduler.cancel_item_job_instance(workspace_id, sjd.id, job_id)
    inst = wait(fabric, workspace_id, sjd.id, job_id, {"Cancelled", "Completed", "Failed"})
    assert inst.status == "Cancelled"
