"""The built-in placement kinds, one module each; importing this package registers them.

They register in the order imported here, which is the order a site's candidates are listed in
(`Topology.order` then keeps it among layouts over the same sites). A kind defined anywhere else
registers the same way, when its class is defined, and is listed after these.
"""

# isort: off
from tierml.plan.kinds import local, browser, edge, cloud, serverless, api, batch, cascade, split, offload
# isort: on
from tierml.plan.kind import PlacementKind

KIND_MODULES = (local, browser, edge, cloud, serverless, api, batch, cascade, split, offload)


def registered() -> list[PlacementKind]:
    """Every registered kind: the built-ins in the order above, then any defined since."""
    return [cls() for cls in PlacementKind.registry.values()]
