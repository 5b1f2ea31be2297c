"""The declarations that exist only for the type checker agree with what runs.

``mypy`` trusts them; nothing at run time reads them, so these tests keep
them honest: every per-frame field of the memmap is declared (and nothing
else), and the mixins' base adds no behaviour to the world.
"""

import inspect

from thpviz.eras import ERAS
from thpviz.model.memmap import MemMap, _Writers
from thpviz.model.world import World
from thpviz.model.worldbase import WorldBase


def test_memmap_declares_exactly_its_fields():
    fields = [name for name, _, _ in MemMap._FIELDS]
    assert list(MemMap.__annotations__) == fields
    assert [k for k in _Writers.__annotations__ if k != "_mem"] == fields


def test_memmap_field_declarations_are_not_class_attributes():
    # a class attribute would be found when an instance lacks the field
    for name, _, _ in MemMap._FIELDS:
        assert name not in vars(MemMap)
        assert name not in vars(_Writers)
    mem = MemMap(16, 4)
    for name, dtype, _ in MemMap._FIELDS:
        assert getattr(mem, name).dtype == dtype
        assert getattr(mem.w, name).name == name


def test_world_base_adds_nothing_at_run_time():
    own = {k for k in vars(WorldBase) if not k.startswith("__")}
    assert own == set(), own
    assert not [k for k, v in vars(WorldBase).items() if inspect.isfunction(v)]


def test_world_defines_every_method_the_base_declares():
    # the declarations under TYPE_CHECKING name methods some part of World
    # really has (parsed from the source, since they do not exist at run time)
    src = inspect.getsource(WorldBase)
    names = [line.split("def ", 1)[1].split("(", 1)[0] for line in src.splitlines()
             if line.strip().startswith("def ")]
    assert len(names) > 20
    w = World(ERAS["4.6"], 8)
    for name in names:
        assert callable(getattr(w, name)), name
    for name in WorldBase.__annotations__:
        assert hasattr(w, name), name
