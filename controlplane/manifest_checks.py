"""wadm's checks across a manifest's components (``validate_manifest``), each naming the field and line.

Duplicate image references (an actor image used twice; one provider image — tag and digest aside — twice
on one link name), duplicate linkdef targets, a linkdef target that is no capability component ("missing
capability component"), and link names that do not match their target.
"""

from __future__ import annotations

from lattice.controlplane.manifest_nodes import Node, fail
from lattice.controlplane.model import ActorComponent, Component, LinkTrait, ProviderComponent
from lattice.oci import is_reference, parse_reference


def _repository(image: str) -> str:
    """wadm's identity of an image for its duplicate checks: the reference without tag or digest."""
    if image.startswith("builtin:") or not is_reference(image):
        return image
    ref = parse_reference(image)
    return f"{ref.registry}/{ref.repository}"


def check_images(components: list[Component], nodes: list[Node]) -> None:
    """wadm's duplicate image rules: an actor image used twice; one provider image twice on one link name."""
    actors: dict[str, str] = {}
    providers: dict[tuple[str, str], str] = {}
    for index, (comp, node) in enumerate(zip(components, nodes, strict=True)):
        path = f"spec.components[{index}].properties.image"
        image_node = node.entries["properties"].entries["image"]
        if isinstance(comp, ActorComponent):
            if comp.image in actors:
                raise fail(f"duplicate image reference {comp.image!r} (also {actors[comp.image]!r})", image_node, path)
            actors[comp.image] = comp.name
            continue
        key = (_repository(comp.requested_image or comp.image), comp.link_name)
        if key in providers:
            raise fail(
                f"duplicate image reference {comp.requested_image or comp.image!r} on link name {comp.link_name!r} "
                f"(also {providers[key]!r}): give one of them another link_name",
                image_node,
                path,
            )
        providers[key] = comp.name


def check_links(components: list[Component], pending: list[tuple[str, LinkTrait, Node, str]]) -> None:
    capabilities = {c.name: c for c in components if isinstance(c, ProviderComponent)}
    seen: dict[tuple[str, str, str], str] = {}
    targets: set[tuple[str, str]] = set()
    for actor, link, props, path in pending:
        target = capabilities.get(link.target)
        if target is None:
            names = ", ".join(sorted(capabilities)) or "none"
            raise fail(
                f"missing capability component: link target {link.target!r} is not a capability component of "
                f"this manifest (capability components: {names})",
                props.entries["target"],
                f"{path}.target",
            )
        if (actor, link.target) in targets:
            raise fail(
                f"duplicate linkdef target {link.target!r} for {actor!r}", props.entries["target"], f"{path}.target"
            )
        targets.add((actor, link.target))
        if link.link_name is not None and link.link_name != target.link_name:
            raise fail(
                f"link name {link.link_name!r} does not match {target.name!r}, which runs as {target.link_name!r}",
                props.entries["link_name"],
                f"{path}.link_name",
            )
        key = (actor, target.contract, target.link_name)
        if key in seen:
            raise fail(
                f"{actor!r} already links {target.contract} ({target.link_name}) through {seen[key]!r}",
                props,
                path,
            )
        seen[key] = target.name
