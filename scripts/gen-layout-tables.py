#!/usr/bin/env python3
"""Generates Sources/PyTap/CPython/LayoutTables+Generated.swift from the DWARF of real interpreters.

Developer tool, not used at run time or in CI. For each minor version it asks gdb for
the offset of every field pytap reads, trying the DWARF paths listed in FIELDS in order,
and writes a table of (offset, path) per version. The test suite checks every table
again against the DWARF of each interpreter on the machine, with pytap's own DWARF
reader, so the two must agree.

usage: scripts/gen-layout-tables.py VERSION=DEBUGFILE ... > Sources/PyTap/CPython/LayoutTables+Generated.swift
  e.g. 2.7=/root/.pyenv/versions/2.7.18/lib/libpython2.7.so.1.0
"""
import re
import subprocess
import sys

# (field, [DWARF paths, first that resolves wins]).
# Path forms: Type.member.member (offset), sizeof(Type), enum(ENUMERATOR).
FIELDS = [
    # _PyRuntimeState (3.7+)
    ("runtimeInterpretersHead", ["_PyRuntimeState.interpreters.head"]),
    ("runtimeGILStateCurrent", ["_PyRuntimeState.gilstate.tstate_current"]),
    ("runtimeGILLocked", ["_PyRuntimeState.ceval.gil.locked"]),
    ("runtimeGILLastHolder", ["_PyRuntimeState.ceval.gil.last_holder"]),
    # PyInterpreterState
    ("interpNext", ["PyInterpreterState.next"]),
    ("interpID", ["PyInterpreterState.id"]),
    ("interpThreadsHead", ["PyInterpreterState.threads.head", "PyInterpreterState.tstate_head"]),
    ("interpModules", ["PyInterpreterState.imports.modules", "PyInterpreterState.modules"]),
    ("interpGIL", ["PyInterpreterState.ceval.gil"]),
    ("gilLocked", ["struct _gil_runtime_state.locked"]),
    ("gilLastHolder", ["struct _gil_runtime_state.last_holder"]),
    # PyThreadState
    ("tstatePrev", ["PyThreadState.prev"]),
    ("tstateNext", ["PyThreadState.next"]),
    ("tstateInterp", ["PyThreadState.interp"]),
    ("tstateFrame", ["PyThreadState.current_frame", "PyThreadState.frame"]),
    ("tstateCFrame", ["PyThreadState.cframe"], (3, 11), (3, 12)),
    ("cframeCurrentFrame", ["_PyCFrame.current_frame"]),
    ("tstateThreadID", ["PyThreadState.thread_id"]),
    ("tstateNativeThreadID", ["PyThreadState.native_thread_id"]),
    ("tstateDatastackChunk", ["PyThreadState.datastack_chunk"]),
    ("tstateDatastackTop", ["PyThreadState.datastack_top"]),
    ("stackChunkPrevious", ["_PyStackChunk.previous"]),
    ("stackChunkSize", ["_PyStackChunk.size"]),
    ("stackChunkData", ["_PyStackChunk.data"]),
    # Exceptions: the one a thread is handling (2.7/3.6 in the thread state, 3.7+ on the
    # exc_info stack of _PyErr_StackItem) and the one being raised
    ("tstateExcType27", ["PyThreadState.exc_type"], (2, 7), (3, 6)),
    ("tstateExcInfo", ["PyThreadState.exc_info"]),
    ("errStackItemException", ["_PyErr_StackItem.exc_type"], (3, 7), (3, 10)),
    ("errStackItemException", ["_PyErr_StackItem.exc_value"], (3, 11), (3, 99)),
    ("errStackItemPrevious", ["_PyErr_StackItem.previous_item"]),
    ("tstateCurrentException", ["PyThreadState.current_exception", "PyThreadState.curexc_type"]),
    # Cyclic GC state: _PyRuntime.gc (3.7, 3.8), the interpreter's (3.9+); 2.7/3.6 keep a
    # static `collecting` in gcmodule.c, found by symbol
    ("runtimeGCCollecting", ["_PyRuntimeState.gc.collecting"]),
    ("interpGCCollecting", ["PyInterpreterState.gc.collecting"]),
    ("interpGCFrame", ["PyInterpreterState.gc.frame"]),
    # PyFrameObject (<= 3.10)
    ("frameBack", ["PyFrameObject.f_back"], (2, 7), (3, 10)),
    ("frameCode", ["PyFrameObject.f_code"], (2, 7), (3, 10)),
    ("frameLasti", ["PyFrameObject.f_lasti"], (2, 7), (3, 10)),
    ("frameLineno", ["PyFrameObject.f_lineno"], (2, 7), (3, 10)),
    ("frameLocalsPlus", ["PyFrameObject.f_localsplus"], (2, 7), (3, 10)),
    # _PyInterpreterFrame (3.11+)
    ("iframePrevious", ["_PyInterpreterFrame.previous"]),
    ("iframeCode", ["_PyInterpreterFrame.f_executable", "_PyInterpreterFrame.f_code"]),
    ("iframeInstruction", ["_PyInterpreterFrame.instr_ptr", "_PyInterpreterFrame.prev_instr"]),
    ("iframeOwner", ["_PyInterpreterFrame.owner"]),
    ("iframeIsEntry", ["_PyInterpreterFrame.is_entry"]),
    ("iframeLocalsPlus", ["_PyInterpreterFrame.localsplus"]),
    ("firstNonPythonFrameOwner", ["enum(FRAME_OWNED_BY_INTERPRETER)", "enum(FRAME_OWNED_BY_CSTACK)"]),
    ("frameOwnedByGenerator", ["enum(FRAME_OWNED_BY_GENERATOR)"]),
    # PyCodeObject
    ("codeFilename", ["PyCodeObject.co_filename"]),
    ("codeName", ["PyCodeObject.co_name"]),
    ("codeQualname", ["PyCodeObject.co_qualname"]),
    ("codeFirstLineno", ["PyCodeObject.co_firstlineno"]),
    ("codeLineTable", ["PyCodeObject.co_linetable", "PyCodeObject.co_lnotab"]),
    ("codeCodeAdaptive", ["PyCodeObject.co_code_adaptive"]),
    ("codeFirstTraceable", ["PyCodeObject._co_firsttraceable"]),
    # 3.12+: taken from a counter when the code object is made, never changed: tells a
    # code object from a later one at the same address in one read
    ("codeVersion", ["PyCodeObject.co_version"], (3, 12), (3, 99)),
    ("codeUnitSize", ["sizeof(_Py_CODEUNIT)"], (3, 11), (3, 99)),
    # Local variables: <= 3.10 names in co_varnames/co_cellvars/co_freevars, 3.11+ in co_localsplusnames
    ("codeNLocals", ["PyCodeObject.co_nlocals"], (2, 7), (3, 10)),
    ("codeVarNames", ["PyCodeObject.co_varnames"], (2, 7), (3, 10)),
    ("codeCellVars", ["PyCodeObject.co_cellvars"], (2, 7), (3, 10)),
    ("codeFreeVars", ["PyCodeObject.co_freevars"], (2, 7), (3, 10)),
    ("codeLocalsPlusNames", ["PyCodeObject.co_localsplusnames"]),
    ("codeLocalsPlusKinds", ["PyCodeObject.co_localspluskinds"]),
    ("codeNLocalsPlus", ["PyCodeObject.co_nlocalsplus"]),
    # Objects
    ("objectType", ["PyObject.ob_type"]),
    ("varObjectSize", ["PyVarObject.ob_size"]),
    ("typeName", ["PyTypeObject.tp_name"]),
    ("typeBasicSize", ["PyTypeObject.tp_basicsize"]),
    ("typeFlags", ["PyTypeObject.tp_flags"]),
    ("typeDictOffset", ["PyTypeObject.tp_dictoffset"]),
    ("heapTypeCachedKeys", ["PyHeapTypeObject.ht_cached_keys"]),
    # Strings: 2.7 str, 3.x bytes and unicode
    ("bytesData", ["PyBytesObject.ob_sval", "PyStringObject.ob_sval"]),
    ("unicodeLength", ["PyASCIIObject.length", "PyUnicodeObject.length"]),
    ("unicodeState", ["PyASCIIObject.state"]),
    ("asciiObjectSize", ["sizeof(PyASCIIObject)"]),
    ("compactUnicodeObjectSize", ["sizeof(PyCompactUnicodeObject)"]),
    ("unicodeData", ["PyUnicodeObject.data", "PyUnicodeObject.str"]),
    ("unicodeCharSize27", ["sizeof(Py_UNICODE)"], (2, 7), (2, 7)),
    # Integers
    ("longDigits", ["PyLongObject.long_value.ob_digit", "PyLongObject.ob_digit"]),
    ("longTag", ["PyLongObject.long_value.lv_tag"]),
    ("intValue27", ["PyIntObject.ob_ival"]),
    ("digitSize", ["sizeof(digit)"]),
    # Dicts
    ("dictKeys", ["PyDictObject.ma_keys"]),
    ("dictValues", ["PyDictObject.ma_values"]),
    ("dictMask27", ["PyDictObject.ma_mask"]),
    ("dictTable27", ["PyDictObject.ma_table"]),
    ("dictEntrySize", ["sizeof(PyDictKeyEntry)", "sizeof(PyDictEntry)"]),
    ("dictEntryKey", ["PyDictKeyEntry.me_key", "PyDictEntry.me_key"]),
    ("dictEntryValue", ["PyDictKeyEntry.me_value", "PyDictEntry.me_value"]),
    ("dictUnicodeEntrySize", ["sizeof(PyDictUnicodeEntry)"]),
    ("keysSize", ["PyDictKeysObject.dk_size"]),
    ("keysLog2Size", ["PyDictKeysObject.dk_log2_size"]),
    ("keysLog2IndexBytes", ["PyDictKeysObject.dk_log2_index_bytes"]),
    ("keysKind", ["PyDictKeysObject.dk_kind"]),
    ("keysNentries", ["PyDictKeysObject.dk_nentries"]),
    ("keysIndices", ["PyDictKeysObject.dk_indices"]),
    ("dictValuesValues", ["PyDictValues.values"]),
    ("dictValuesValid", ["PyDictValues.valid"]),
    ("dictUsed", ["PyDictObject.ma_used"]),
    ("dictKeysGeneral", ["enum(DICT_KEYS_GENERAL)"]),
    ("moduleDict", ["PyModuleObject.md_dict"]),
    # Other objects a local variable's value is shown from
    ("tupleItems", ["PyTupleObject.ob_item"]),
    ("floatValue", ["PyFloatObject.ob_fval"]),
    ("cellReference", ["PyCellObject.ob_ref"]),
]


def gdb_expression(path):
    m = re.fullmatch(r"sizeof\((.+)\)", path)
    if m:
        return "p/d sizeof(%s)" % m.group(1)
    m = re.fullmatch(r"enum\((.+)\)", path)
    if m:
        return "p/d %s" % m.group(1)
    parts = path.split(".")
    if parts[0].startswith("struct "):
        typ, members = parts[0], parts[1:]
    else:
        typ, members = parts[0], parts[1:]
    return "p/d (long)&((%s*)0)->%s" % (typ, ".".join(members))


def applies(field, version):
    if len(field) < 4:
        return True
    return field[2] <= version <= field[3]


def resolve(debug_file, version):
    fields = [f for f in FIELDS if applies(f, version)]
    exprs = []
    for f in fields:
        for path in f[1]:
            exprs.append(path)
    args = ["gdb", "-batch", "-nx"]
    for path in exprs:
        args += ["-ex", "echo @@%s@@\\n" % path, "-ex", gdb_expression(path)]
    args.append(debug_file)
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600).stdout + "\n"
    values = {}
    for m in re.finditer(r"@@(.+?)@@\n(.*?)\n", out):
        v = re.fullmatch(r"\$\d+ = (-?\d+)", m.group(2).strip())
        if v:
            values[m.group(1)] = int(v.group(1))
    table = []
    for f in fields:
        name, paths = f[0], f[1]
        for path in paths:
            if path in values:
                table.append((name, values[path], path))
                break
    return table


def main():
    versions = []
    for arg in sys.argv[1:]:
        version, path = arg.split("=", 1)
        versions.append((version, path))
    print("// Generated by scripts/gen-layout-tables.py from the DWARF of these builds:")
    for version, path in versions:
        print("//   %s: %s" % (version, path))
    print("// Do not edit by hand: regenerate, then run the layout test against every interpreter.")
    print()
    print("extension LayoutTables {")
    for version, path in versions:
        table = resolve(path, tuple(int(x) for x in version.split(".")))
        ident = "python" + version.replace(".", "_")
        print("    static let %s: [LayoutField: FieldSpec] = [" % ident)
        for name, value, p in table:
            print('        .%s: FieldSpec(%d, "%s"),' % (name, value, p))
        print("    ]")
        print()
    print("}")


if __name__ == "__main__":
    main()
