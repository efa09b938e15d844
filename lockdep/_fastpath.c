/* lockdep's validated-acquisition hot path in C (see lockdep/fastpath.py).
 *
 * The methods here are the "fast" mode methods of Mutex and of install()'s
 * TrackedLock/TrackedRLock, transliterated from their Python versions in
 * mutex.py and instrument.py: the same held stack (a list of entry tuples),
 * the same chain-cache lookup (held[-1][2].get(key)), the same entries
 * (lock, key, chain, code, lasti, None) and the same Python methods called on
 * a miss (_acquire_slow, _acquire_missed, _acquire_args, _release_slow). Only
 * the Python frames are saved. Everything else stays Python.
 *
 * The GIL is relied on throughout (the module does not declare free-threading
 * support, so a free-threaded interpreter enables the GIL when it imports it).
 * The raw lock is taken by calling its own acquire(): blocking, it releases the
 * GIL and stays interruptible exactly as _thread.lock is. References held
 * across that call are owned, never borrowed.
 *
 * Public C API is used, with version conditionals: PyFrame_GetLasti (3.11+;
 * 3.10 reads frame.f_lasti), and the code object's co_filename and co_name
 * fields on the versions known to have them (else getattr). One exception: on
 * 3.11 to 3.13 the site of an acquisition is read from the interpreter's frames
 * (its internal header, for the version built against), which saves making a
 * frame object per acquisition; elsewhere, and with LOCKDEP_PUBLIC_FRAMES
 * defined, the public frame API does the same.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h> /* PyFrame_GetBack */
#endif
#include <stddef.h>
#include <stdint.h>

/* 3.11 to 3.13: the interpreter's frames (struct _PyInterpreterFrame), read for the
 * site of an acquisition without making frame objects (see "Sites" below). Their
 * layout is the interpreter's own, which its internal header declares for the
 * version being built; other versions use the public frame API. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(LOCKDEP_PUBLIC_FRAMES)
#define LOCKDEP_IFRAMES 1
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#define LOCKDEP_UNDEF_BUILD_CORE
#endif
#include <internal/pycore_code.h>  /* _PyLocals_GetKind, CO_FAST_LOCAL */
#include <internal/pycore_frame.h>
#ifdef LOCKDEP_UNDEF_BUILD_CORE
#undef Py_BUILD_CORE
#endif
#endif

#define FASTCALL_KW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS
#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL

/* --- LockCore: the fields of a lock ------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *lock;  /* _lock: the raw _thread lock */
    PyObject *fkey;  /* _fkey: the key the fast path looks up, or None */
    PyObject *tkey;  /* _tkey: the class's key (None: untracked) */
    PyObject *name;  /* _name: a Mutex's class name ("" for install()'s locks) */
    Py_ssize_t node; /* _lockdep_node: the tracker's instance number */
    Py_ssize_t pos;  /* _lockdep_pos: the tracker's held-stack hint */
    Py_ssize_t id_plus_one; /* _id + 1: a registry reference to drop when collected
                             * (_id -1, none, is 0: what a new object holds) */
    unsigned long owner; /* _owner: the ident of an untracked holder, or 0 */
    int policy;      /* _policy: how a class the thread holds is treated (checks) */
    char recursive;  /* _recursive */
    char backtrace;  /* _backtrace */
} LockCore;

static PyObject *g_forget; /* fastpath._forget(class_id, node): a lock was collected */

static int
core_traverse(LockCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lock);
    Py_VISIT(self->fkey);
    Py_VISIT(self->tkey);
    Py_VISIT(self->name);
    return 0;
}

static int
core_clear(LockCore *self)
{
    Py_CLEAR(self->lock);
    Py_CLEAR(self->fkey);
    Py_CLEAR(self->tkey);
    Py_CLEAR(self->name);
    return 0;
}

/* A collected lock gives back its class reference and its instance number, through
 * Python (deferred work: see tracker), only when it has one: most have neither. */
static void
core_finalize(PyObject *op)
{
    LockCore *self = (LockCore *)op;
    Py_ssize_t id = self->id_plus_one - 1, node = self->node;
    if ((id < 0 && node == 0) || g_forget == NULL)
        return;
    PyObject *exc_type, *exc, *tb;
    PyErr_Fetch(&exc_type, &exc, &tb);
    PyObject *a = PyLong_FromSsize_t(id);
    PyObject *b = a != NULL ? PyLong_FromSsize_t(node) : NULL;
    PyObject *r = b != NULL ? PyObject_CallFunctionObjArgs(g_forget, a, b, NULL) : NULL;
    Py_XDECREF(a);
    Py_XDECREF(b);
    if (r == NULL)
        PyErr_Clear(); /* interpreter shutdown, say: never an error from a finalizer */
    Py_XDECREF(r);
    PyErr_Restore(exc_type, exc, tb);
}

static void
core_dealloc(LockCore *self)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
core_get_id(LockCore *self, void *closure)
{
    return PyLong_FromSsize_t(self->id_plus_one - 1);
}

static int
core_set_id(LockCore *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "can't delete _id");
        return -1;
    }
    Py_ssize_t id = PyLong_AsSsize_t(value);
    if (id == -1 && PyErr_Occurred())
        return -1;
    if (id < -1) {
        PyErr_SetString(PyExc_ValueError, "_id must be a class id or -1");
        return -1;
    }
    self->id_plus_one = id + 1;
    return 0;
}

static PyGetSetDef core_getset[] = {
    {"_id", (getter)core_get_id, (setter)core_set_id, "the class id registered, or -1", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef core_members[] = {
    {"_lock", T_OBJECT_EX, offsetof(LockCore, lock), 0, NULL},
    {"_fkey", T_OBJECT_EX, offsetof(LockCore, fkey), 0, NULL},
    {"_tkey", T_OBJECT, offsetof(LockCore, tkey), 0, NULL},
    {"_name", T_OBJECT_EX, offsetof(LockCore, name), 0, NULL},
    {"_lockdep_node", T_PYSSIZET, offsetof(LockCore, node), 0, NULL},
    {"_lockdep_pos", T_PYSSIZET, offsetof(LockCore, pos), 0, NULL},
    {"_owner", T_ULONG, offsetof(LockCore, owner), 0, NULL},
    {"_policy", T_INT, offsetof(LockCore, policy), 0, NULL},
    {"_recursive", T_BOOL, offsetof(LockCore, recursive), 0, NULL},
    {"_backtrace", T_BOOL, offsetof(LockCore, backtrace), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject LockCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lockdep._fastpath.LockCore",
    .tp_doc = "The fields of a lock (see lockdep.fastpath).",
    .tp_basicsize = sizeof(LockCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_finalize = core_finalize,
    .tp_members = core_members,
    .tp_getset = core_getset,
};

/* --- what bind() gave, and constants ------------------------------------------- */

static PyObject *g_local;         /* the tracker's threading.local (.held) */
static int g_local_is_thread;     /* a _thread._local: one held stack per thread state */
static PyObject *g_subkey;        /* keys.subclass_key(key, subclass) */
static PyObject *g_check_subclass; /* keys.check_subclass(subclass) */
static PyObject *g_known;         /* the checker's instance order: pair -> EdgeInfo */
static PyObject *g_thin;          /* sites.THIN_WRAPPERS: file -> names or None */
static PyObject *g_reentry;       /* held.REENTRY: the extra of a re-entry's entry */
static PyInterpreterState *g_interp;

static PyObject *s_state, *s_busy, *s_classes, *s_is_owned;
static PyObject *s_held, *s_same, *s_guards, *s_acquire, *s_release, *s_locked,
    *s_lockdep_node, *s_acquire_slow, *s_acquire_missed, *s_acquire_args, *s_release_slow,
    *s_subclass, *s_blocking, *s_timeout, *s_tstate_key;
#if PY_VERSION_HEX < 0x030B0000
static PyObject *s_f_lasti;
#endif
#if PY_VERSION_HEX >= 0x030E0000
static PyObject *s_co_filename, *s_co_name;
#endif
static PyObject *c_zero, *c_one, *c_two, *c_minus_one, *c_minus_one_f, *c_zero_f;
static PyTypeObject *t_lock, *t_rlock; /* _thread.lock, _thread.RLock */
/* A method of _thread.lock or _thread.RLock, found once. Called with no argument on
 * an object of exactly its type, it is called through its C function when its
 * calling convention is one of the four known here: that skips the descriptor's
 * receiver check (the caller checked the type) and the vectorcall dispatch, which
 * cost as much as the rest of a fast acquisition. Otherwise through the descriptor. */
typedef struct {
    PyObject *descr; /* the method descriptor */
    PyCFunction meth; /* its C function, or NULL: call descr */
    int flags;        /* its calling convention (ml_flags) */
} RawMethod;

static RawMethod d_lock_acquire, d_lock_release, d_rlock_acquire, d_rlock_release;
static RawMethod d_lock_locked, d_rlock_is_owned; /* for Condition's _is_owned */
static PyObject *c_empty_tuple;

static int
raw_method_bind(RawMethod *m, PyTypeObject *type, PyObject *name)
{
    m->descr = PyObject_GetAttr((PyObject *)type, name);
    if (m->descr == NULL)
        return -1;
    m->meth = NULL;
    m->flags = 0;
    if (Py_IS_TYPE(m->descr, &PyMethodDescr_Type)) {
        PyMethodDef *def = ((PyMethodDescrObject *)m->descr)->d_method;
        int flags = def->ml_flags & ~METH_COEXIST;
        if (flags == METH_NOARGS || flags == (METH_VARARGS | METH_KEYWORDS) ||
            flags == METH_FASTCALL || flags == (METH_FASTCALL | METH_KEYWORDS)) {
            m->meth = def->ml_meth;
            m->flags = flags;
        }
    }
    return 0;
}

/* m(raw) for raw of exactly m's type: a new reference, or NULL with an exception. */
static PyObject *
raw_method_call(RawMethod *m, PyObject *raw)
{
    PyCFunction meth = m->meth;
    switch (meth != NULL ? m->flags : -1) {
    case METH_NOARGS:
        return meth(raw, NULL);
    case METH_VARARGS | METH_KEYWORDS:
        return ((PyCFunctionWithKeywords)(void (*)(void))meth)(raw, c_empty_tuple, NULL);
    case METH_FASTCALL:
        return ((_PyCFunctionFast)(void (*)(void))meth)(raw, NULL, 0);
    case METH_FASTCALL | METH_KEYWORDS:
        return ((_PyCFunctionFastWithKeywords)(void (*)(void))meth)(raw, NULL, 0, NULL);
    default:
        return PyObject_Vectorcall(m->descr, &raw, 1, NULL);
    }
}

/* --- the calling thread's held stack ------------------------------------------------
 *
 * local.held is one list per thread, set when the thread first meets lockdep
 * and never replaced. Reading it through the threading.local costs more than
 * the rest of an acquisition, so the list is kept (a) in the thread state's
 * dict, owned by a Holder that dies with the thread state, and (b) in a
 * one-entry cache (thread state id -> list, borrowed from the Holder), which
 * the Holder clears when it dies. Thread state ids are never reused.
 */

typedef struct {
    PyObject_HEAD
    PyObject *held;
    PyObject *state; /* local.state: the thread's ThreadState */
    uint64_t id;
} Holder;

static uint64_t g_cache_id; /* 0: empty (ids start at 1) */
static PyObject *g_cache_held, *g_cache_state;

static void
holder_dealloc(Holder *self)
{
    if (g_cache_id == self->id) {
        g_cache_id = 0;
        g_cache_held = g_cache_state = NULL;
    }
    Py_CLEAR(self->held);
    Py_CLEAR(self->state);
    PyObject_Free(self);
}

static PyTypeObject HolderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lockdep._fastpath.Holder",
    .tp_basicsize = sizeof(Holder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)holder_dealloc,
};

static PyObject *
local_held(void)
{
    PyObject *held = PyObject_GetAttr(g_local, s_held);
    if (held != NULL && !PyList_CheckExact(held)) {
        PyErr_SetString(PyExc_TypeError, "lockdep: the held stack is not a list");
        Py_CLEAR(held);
    }
    return held;
}

/* The calling thread's held stack: a new reference, or NULL with an exception. */
static PyObject *
held_now(void)
{
    if (g_local == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "lockdep._fastpath is not bound");
        return NULL;
    }
    if (!g_local_is_thread)
        return local_held();
    PyThreadState *tstate = PyThreadState_Get();
    uint64_t id = PyThreadState_GetID(tstate);
    if (id == g_cache_id)
        return Py_NewRef(g_cache_held);
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL)
        return local_held();
    PyObject *found = PyDict_GetItemWithError(dict, s_tstate_key);
    Holder *holder;
    if (found != NULL && Py_IS_TYPE(found, &HolderType) && ((Holder *)found)->id == id) {
        holder = (Holder *)found;
    }
    else {
        if (PyErr_Occurred())
            return NULL;
        PyObject *held = local_held();
        if (held == NULL)
            return NULL;
        PyObject *state = PyObject_GetAttr(g_local, s_state);
        if (state != NULL) {
            /* A busy state may be the threading.local class's placeholder (the
             * thread's own is being made: see tracker._Local): never cache it. */
            PyObject *busy = PyObject_GetAttr(state, s_busy);
            int truth = busy == NULL ? -1 : PyObject_IsTrue(busy);
            Py_XDECREF(busy);
            if (truth != 0) {
                Py_DECREF(state);
                if (truth < 0) {
                    Py_DECREF(held);
                    return NULL;
                }
                return held;
            }
        }
        holder = state != NULL ? PyObject_New(Holder, &HolderType) : NULL;
        if (holder == NULL) {
            Py_DECREF(held);
            Py_XDECREF(state);
            return NULL;
        }
        holder->held = held;
        holder->state = state;
        holder->id = id;
        int failed = PyDict_SetItem(dict, s_tstate_key, (PyObject *)holder);
        Py_DECREF(holder); /* the dict's now (or gone, on failure) */
        if (failed)
            return NULL;
    }
    g_cache_id = id;
    g_cache_held = holder->held;
    g_cache_state = holder->state;
    return Py_NewRef(holder->held);
}

/* A field of lockdep's own slotted classes (ThreadState.busy, Chain.classes and
 * Chain.same), read at its offset: bind() gives the classes, and the offset of each
 * field is its member descriptor's, so that reading it costs a load where getattr
 * costs as much as the rest of an acquisition. An object of another type, or whose
 * field is unset, is read with getattr (its error included). */
typedef struct {
    PyTypeObject *type; /* strong; NULL: always getattr */
    Py_ssize_t offset;
} Field;

static Field f_busy, f_classes, f_same;

static int
field_bind(Field *field, PyObject *type, PyObject *name)
{
    Py_CLEAR(field->type);
    if (!PyType_Check(type)) {
        PyErr_Format(PyExc_TypeError, "lockdep._fastpath.bind: a class, not %R", type);
        return -1;
    }
    PyObject *descr = PyObject_GetAttr(type, name);
    if (descr == NULL)
        return -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
        ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX) {
        field->type = (PyTypeObject *)Py_NewRef(type);
        field->offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    }
    Py_DECREF(descr);
    return 0;
}

/* obj.<name> as field knows it: a new reference, or NULL with an exception. */
static PyObject *
field_get(Field *field, PyObject *obj, PyObject *name)
{
    if (Py_IS_TYPE(obj, field->type)) {
        PyObject *value = *(PyObject **)((char *)obj + field->offset);
        if (value != NULL)
            return Py_NewRef(value);
    }
    return PyObject_GetAttr(obj, name);
}

/* Whether the calling thread is inside lockdep (local.state.busy), which makes its
 * acquisitions untracked: 1, 0, or -1. */
static int
busy_now(void)
{
    /* The cache may be another thread's by now (Python code ran since held_now()). */
    int mine = g_local_is_thread && g_cache_state != NULL &&
               g_cache_id == PyThreadState_GetID(PyThreadState_Get());
    PyObject *state = mine ? Py_NewRef(g_cache_state) : PyObject_GetAttr(g_local, s_state);
    if (state == NULL)
        return -1;
    PyObject *busy = field_get(&f_busy, state, s_busy);
    Py_DECREF(state);
    if (busy == NULL)
        return -1;
    int truth = busy == Py_False ? 0 : PyObject_IsTrue(busy);
    Py_DECREF(busy);
    return truth;
}

/* --- small helpers ----------------------------------------------------------------- */

/* held[-1][2] (the chain node of the stack): borrowed, or NULL with an exception. */
static PyObject *
top_chain(PyObject *held)
{
    Py_ssize_t n = PyList_GET_SIZE(held);
    if (n < 1) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    PyObject *top = PyList_GET_ITEM(held, n - 1);
    if (!PyTuple_Check(top) || PyTuple_GET_SIZE(top) < 3 || !PyDict_Check(PyTuple_GET_ITEM(top, 2))) {
        PyErr_SetString(PyExc_TypeError, "lockdep: a corrupt held stack");
        return NULL;
    }
    return PyTuple_GET_ITEM(top, 2);
}

/* node.get(key): 1 and *nxt (new reference) when cached, 0 when not, -1 on error. */
static int
cached(PyObject *node, PyObject *key, PyObject **nxt)
{
    *nxt = NULL;
    if (key == NULL || key == Py_None)
        return 0; /* an untracked lock: never a key of the cache */
    PyObject *found = PyDict_GetItemWithError(node, key);
    if (found == NULL)
        return PyErr_Occurred() ? -1 : 0;
    *nxt = Py_NewRef(found);
    return 1;
}

/* Whether held's top entry is lock's. */
static int
on_top(PyObject *held, PyObject *lock)
{
    Py_ssize_t n = PyList_GET_SIZE(held);
    if (n < 1)
        return 0;
    PyObject *top = PyList_GET_ITEM(held, n - 1);
    return PyTuple_Check(top) && PyTuple_GET_SIZE(top) > 0 && PyTuple_GET_ITEM(top, 0) == lock;
}

/* The Python frame of the caller: borrowed, or NULL (called from C with no frame). */
static PyFrameObject *
caller(void)
{
    return PyEval_GetFrame();
}

static PyObject *
as_arg(PyFrameObject *frame)
{
    return frame != NULL ? (PyObject *)frame : Py_None;
}

static PyObject *
code_filename(PyCodeObject *code)
{
#if PY_VERSION_HEX < 0x030E0000
    return Py_NewRef(code->co_filename);
#else
    return PyObject_GetAttr((PyObject *)code, s_co_filename);
#endif
}

static PyObject *
code_name(PyCodeObject *code)
{
#if PY_VERSION_HEX < 0x030E0000
    return Py_NewRef(code->co_name);
#else
    return PyObject_GetAttr((PyObject *)code, s_co_name);
#endif
}

#if PY_VERSION_HEX >= 0x030B0000
static PyObject *lasti_object(long lasti);
#endif

/* The site of an acquisition from frame: (code, lasti) as new references, as Python
 * records it (frame.f_code, frame.f_lasti); (None, -1) without a frame. */
static int
site_of(PyFrameObject *frame, PyObject **code, PyObject **lasti)
{
    if (frame == NULL) {
        *code = Py_NewRef(Py_None);
        *lasti = Py_NewRef(c_minus_one);
        return 0;
    }
    *code = (PyObject *)PyFrame_GetCode(frame);
#if PY_VERSION_HEX >= 0x030B0000
    *lasti = lasti_object(PyFrame_GetLasti(frame));
#else
    *lasti = PyObject_GetAttr((PyObject *)frame, s_f_lasti);
#endif
    if (*lasti == NULL) {
        Py_CLEAR(*code);
        return -1;
    }
    return 0;
}

/* --- Sites ---------------------------------------------------------------------------
 *
 * An acquisition records the first frame outside the standard library's thin
 * wrappers (sites.user_frame). Whether a code object is one of them (its file in
 * sites.THIN_WRAPPERS, its name among the file's) is kept per code object in a
 * small direct-mapped table (which holds the code objects it names, so that an
 * address is never another code's): the dict lookups by file name are made once
 * per code. THIN_WRAPPERS does not change; bind() empties the table.
 *
 * The site's (code, lasti) is found without making frame objects where the
 * interpreter's frames can be read (LOCKDEP_IFRAMES): the walk is PyEval_GetFrame's
 * and PyFrame_GetBack's (the first complete frame, then each previous complete
 * one), the offset PyFrame_GetLasti's. A frame object is made only for the slow
 * path, which wants one.
 */

#define THIN_SLOTS 1024 /* pairs of two ways: the most recent code first */
static struct {
    PyObject *code; /* strong, or NULL */
    int thin;
} g_thin_codes[THIN_SLOTS];

static inline size_t
thin_pair(PyCodeObject *code)
{
    uintptr_t address = (uintptr_t)code;
    return (size_t)((address >> 4) ^ (address >> 14)) % (THIN_SLOTS / 2) * 2;
}

static void
thin_codes_clear(void)
{
    for (int i = 0; i < THIN_SLOTS; i++)
        Py_CLEAR(g_thin_codes[i].code);
}

/* Whether code is one of the thin wrappers, found and remembered first in its pair
 * (the other one moves to the second way). */
static int
thin_verdict(PyCodeObject *code, size_t slot)
{
    PyObject *filename = code_filename(code);
    if (filename == NULL)
        return -1;
    PyObject *names = PyDict_GetItemWithError(g_thin, filename); /* borrowed */
    Py_DECREF(filename);
    int thin;
    if (names == NULL)
        thin = PyErr_Occurred() ? -1 : 0;
    else if (names == Py_None)
        thin = 1;
    else {
        Py_INCREF(names);
        PyObject *name = code_name(code);
        thin = name != NULL ? PySequence_Contains(names, name) : -1;
        Py_XDECREF(name);
        Py_DECREF(names);
    }
    if (thin >= 0) {
        PyObject *evicted = g_thin_codes[slot + 1].code;
        g_thin_codes[slot + 1] = g_thin_codes[slot];
        g_thin_codes[slot].code = Py_NewRef((PyObject *)code);
        g_thin_codes[slot].thin = thin;
        Py_XDECREF(evicted); /* last: it may run code */
    }
    return thin;
}

/* Whether code is one of the thin wrappers: 1, 0, or -1 with an exception. */
static inline int
is_thin(PyCodeObject *code)
{
    size_t slot = thin_pair(code);
    if (g_thin_codes[slot].code == (PyObject *)code)
        return g_thin_codes[slot].thin;
    if (g_thin_codes[slot + 1].code == (PyObject *)code)
        return g_thin_codes[slot + 1].thin;
    return thin_verdict(code, slot);
}

/* sites.user_frame: frame, or its first caller outside the standard library's thin
 * wrappers. A new reference (NULL with an exception on error; None-less: frame may
 * be NULL, then NULL without an exception). */
static PyFrameObject *
user_frame(PyFrameObject *frame)
{
    if (frame == NULL)
        return NULL;
    Py_INCREF(frame);
    for (;;) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int thin = is_thin(code);
        Py_DECREF(code);
        if (thin <= 0) {
            if (thin == 0)
                return frame;
            Py_DECREF(frame);
            return NULL;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        if (back == NULL)
            return frame;
        Py_SETREF(frame, back);
    }
}

#if PY_VERSION_HEX >= 0x030B0000
/* Instruction offsets as ints, made once: a site is recorded at every acquisition
 * (3.10's frame.f_lasti makes its own). */
#define LASTI_CACHED 4096
static PyObject *g_lasti[LASTI_CACHED / 2];

static PyObject *
lasti_object(long lasti)
{
    if (lasti >= 0 && lasti < LASTI_CACHED && lasti % 2 == 0) {
        PyObject **slot = &g_lasti[lasti / 2];
        if (*slot == NULL)
            *slot = PyLong_FromLong(lasti);
        return Py_XNewRef(*slot);
    }
    return PyLong_FromLong(lasti);
}
#endif

#ifdef LOCKDEP_IFRAMES
typedef struct _PyInterpreterFrame IFrame;

static IFrame *
complete_frame(IFrame *frame)
{
    while (frame != NULL && _PyFrame_IsIncomplete(frame))
        frame = frame->previous;
    return frame;
}

/* The calling Python code's frame (PyEval_GetFrame's), or NULL without one. */
static IFrame *
current_iframe(void)
{
    PyThreadState *tstate = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    return complete_frame(tstate->current_frame);
#else
    return complete_frame(tstate->cframe->current_frame);
#endif
}

static PyCodeObject *
iframe_code(IFrame *frame)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _PyFrame_GetCode(frame);
#else
    return frame->f_code;
#endif
}

static long
iframe_lasti(IFrame *frame)
{
    int lasti = _PyInterpreterFrame_LASTI(frame);
    return lasti < 0 ? -1 : (long)lasti * (long)sizeof(_Py_CODEUNIT);
}
#endif

/* The site of the calling Python code, as site_of(skip ? user_frame(caller()) :
 * caller()) records it: (code, lasti) as new references, (None, -1) without a
 * Python caller. 0, or -1 with an exception. */
static int
calling_site(int skip, PyObject **code, PyObject **lasti)
{
#ifdef LOCKDEP_IFRAMES
    IFrame *frame = current_iframe();
    if (frame == NULL)
        return site_of(NULL, code, lasti);
    while (skip) {
        int thin = is_thin(iframe_code(frame));
        if (thin < 0)
            return -1;
        IFrame *back = thin ? complete_frame(frame->previous) : NULL;
        if (back == NULL)
            break;
        frame = back;
    }
    *lasti = lasti_object(iframe_lasti(frame));
    if (*lasti == NULL)
        return -1;
    *code = Py_NewRef((PyObject *)iframe_code(frame));
    return 0;
#else
    if (!skip)
        return site_of(caller(), code, lasti);
    PyFrameObject *frame = user_frame(caller());
    if (frame == NULL && PyErr_Occurred())
        return -1;
    int rc = site_of(frame, code, lasti);
    Py_XDECREF(frame);
    return rc;
#endif
}

/* The site of an acquisition by install()'s locks: the first caller outside the thin
 * wrappers. */
static int
user_site(PyObject **code, PyObject **lasti)
{
    return calling_site(1, code, lasti);
}

/* The site of a Mutex's acquisition: its caller. */
static int
caller_site(PyObject **code, PyObject **lasti)
{
    return calling_site(0, code, lasti);
}

/* raw.acquire(*args[1:]) or raw.release() (args[0] is raw): the result, or NULL. */
static PyObject *
raw_call(int release, PyObject *const *args, size_t nargs)
{
    PyObject *raw = args[0];
    if (raw == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_lock");
        return NULL;
    }
    PyTypeObject *type = Py_TYPE(raw);
    RawMethod *method = NULL;
    if (type == t_lock)
        method = release ? &d_lock_release : &d_lock_acquire;
    else if (type == t_rlock)
        method = release ? &d_rlock_release : &d_rlock_acquire;
    if (method != NULL)
        return nargs == 1 ? raw_method_call(method, raw)
                          : PyObject_Vectorcall(method->descr, args, nargs, NULL);
    return PyObject_VectorcallMethod(release ? s_release : s_acquire, args, nargs, NULL);
}

static int
call_raw(PyObject *raw, PyObject *name)
{
    PyObject *r = raw_call(name == s_release, &raw, 1);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* --- spare entries -------------------------------------------------------------------
 *
 * A held entry is a 6-tuple made at each acquisition and dropped at its release.
 * Making and freeing a tuple costs more than the rest of a fast acquisition (the
 * garbage collector counts every container made, and runs when enough were), so the
 * fast release keeps an entry nobody else refers to (the held stack's was its only
 * reference) as a spare, its items cleared, and the next entry is made in a spare,
 * as zip() reuses its result tuple. The spares are the module's, shared by the
 * threads under the GIL: nothing in between takes a spare and fills it, or clears
 * one and keeps it, lets another thread run.
 */

#define SPARE_ENTRIES 8
static PyObject *g_spares[SPARE_ENTRIES]; /* 6-tuples with NULL items, owned */
static int g_spare_count;

/* A 6-tuple with NULL items, for the caller to fill: a spare, or a new one. */
static PyObject *
entry_tuple(void)
{
    if (g_spare_count == 0)
        return PyTuple_New(6);
    PyObject *entry = g_spares[--g_spare_count];
    g_spares[g_spare_count] = NULL;
    PyObject_GC_Track(entry);
    return entry;
}

/* Drop entry (stolen), just taken off a held stack: kept as a spare when it was the
 * only reference and there is room, else released. */
static void
drop_entry(PyObject *entry)
{
    if (Py_REFCNT(entry) != 1 || g_spare_count == SPARE_ENTRIES ||
        !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 6) {
        Py_DECREF(entry);
        return;
    }
    /* Untracked while a spare, so that the collector's lists (gc.get_objects()) never
     * show a tuple with NULL items. */
    PyObject_GC_UnTrack(entry);
    PyObject *items[6];
    for (Py_ssize_t i = 0; i < 6; i++) {
        items[i] = PyTuple_GET_ITEM(entry, i);
        PyTuple_SET_ITEM(entry, i, NULL);
    }
    g_spares[g_spare_count++] = entry;
    /* Last: releasing an item may run code (a finalizer) that uses the spares. */
    for (Py_ssize_t i = 0; i < 6; i++)
        Py_XDECREF(items[i]);
}

/* The entry (self, key, node, code, lasti, extra or None); steals code, lasti and
 * extra. */
static PyObject *
make_entry(PyObject *self, PyObject *key, PyObject *node, PyObject *code, PyObject *lasti,
           PyObject *extra)
{
    PyObject *entry = entry_tuple();
    if (entry == NULL) {
        Py_DECREF(code);
        Py_DECREF(lasti);
        Py_XDECREF(extra);
        return NULL;
    }
    PyTuple_SET_ITEM(entry, 0, Py_NewRef(self));
    PyTuple_SET_ITEM(entry, 1, Py_NewRef(key));
    PyTuple_SET_ITEM(entry, 2, Py_NewRef(node));
    PyTuple_SET_ITEM(entry, 3, code);
    PyTuple_SET_ITEM(entry, 4, lasti);
    PyTuple_SET_ITEM(entry, 5, extra != NULL ? extra : Py_NewRef(Py_None));
    return entry;
}

/* Push entry (stolen) on held, the raw lock being taken: if that fails, the raw
 * lock is released again (not recorded: not taken either). */
static int
push_taken(LockCore *self, PyObject *held, PyObject *entry)
{
    int rc = PyList_Append(held, entry);
    Py_DECREF(entry);
    if (rc < 0) {
        PyObject *exc_type, *exc, *tb;
        PyErr_Fetch(&exc_type, &exc, &tb);
        if (call_raw(self->lock, s_release) < 0)
            PyErr_Clear();
        PyErr_Restore(exc_type, exc, tb);
    }
    return rc;
}

/* Take the raw lock, blocking, and push (self, key, node, site) on held. Steals
 * code and lasti. On failure nothing is taken or pushed. set_pos: record the
 * entry's index in _lockdep_pos. */
static int
take_and_push(LockCore *self, PyObject *held, PyObject *key, PyObject *node, PyObject *code,
              PyObject *lasti, int set_pos)
{
    PyObject *entry = make_entry((PyObject *)self, key, node, code, lasti, NULL);
    if (entry == NULL)
        return -1;
    if (call_raw(self->lock, s_acquire) < 0) {
        Py_DECREF(entry);
        return -1;
    }
    if (set_pos)
        self->pos = PyList_GET_SIZE(held);
    return push_taken(self, held, entry);
}

/* The fast release: pop held's top entry (lock's) and release the raw lock; else 0
 * and nothing done. 1 when done, -1 on error. */
static int
pop_and_release(LockCore *self, PyObject *held)
{
    if (!on_top(held, (PyObject *)self))
        return 0;
    Py_ssize_t n = PyList_GET_SIZE(held);
#ifdef Py_GIL_DISABLED
    if (PyList_SetSlice(held, n - 1, n, NULL) < 0)
        return -1;
#else
    /* list.pop(): what it does for the last item, less giving memory back (the
     * next push reuses it). */
    PyObject *entry = PyList_GET_ITEM(held, n - 1);
    Py_SET_SIZE(held, n - 1);
    drop_entry(entry);
#endif
    return call_raw(self->lock, s_release) < 0 ? -1 : 1;
}

/* Call self.<name>(*args): the Python slow paths. */
static PyObject *
call_method(PyObject *self, PyObject *name, PyObject *a, PyObject *b, PyObject *c,
            PyObject *d, Py_ssize_t nargs)
{
    PyObject *args[5] = {self, a, b, c, d};
    return PyObject_VectorcallMethod(name, args, (size_t)nargs + 1, NULL);
}

/* Bind up to n parameters, positional or by keyword, to out[] (borrowed; NULL when
 * not given), with Python's errors. */
static int
parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
      PyObject **names, Py_ssize_t n, PyObject **out)
{
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = NULL;
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes from 1 to %zd positional arguments but %zd were given", fname,
                     n + 1, nargs + 1);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        out[i] = args[i];
    if (kwnames == NULL)
        return 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t j = 0;
        for (; j < n; j++) {
            if (kw == names[j] || PyUnicode_Compare(kw, names[j]) == 0)
                break;
        }
        if (j == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
                         fname, kw);
            return -1;
        }
        if (out[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%U'", fname,
                         kw);
            return -1;
        }
        out[j] = args[nargs + k];
    }
    return 0;
}

/* blocking is True and timeout == -1: a plain blocking acquire. */
static int
plain_blocking(PyObject *blocking, PyObject *timeout)
{
    if (blocking != NULL && blocking != Py_True)
        return 0;
    if (timeout == NULL)
        return 1;
    return PyObject_RichCompareBool(timeout, c_minus_one, Py_EQ);
}

/* --- Mutex ------------------------------------------------------------------------- */

/* Mutex.lock / __enter__ / acquire() for the blocking case; subclass NULL or a
 * true value. Returns 0, or -1 with an exception. */
static int
mutex_take(LockCore *self, PyObject *subclass)
{
    PyObject *held = held_now();
    if (held == NULL)
        return -1;
    PyObject *key = Py_XNewRef(self->fkey);
    PyObject *nxt = NULL;
    int rc = -1;
    if (subclass != NULL) {
        PyObject *args[2] = {key != NULL ? key : Py_None, subclass};
        PyObject *sub = PyObject_Vectorcall(g_subkey, args, 2, NULL);
        if (sub == NULL)
            goto done;
        Py_XSETREF(key, sub);
    }
    PyObject *node = top_chain(held);
    if (node == NULL)
        goto done;
    int hit = cached(node, key, &nxt);
    if (hit < 0)
        goto done;
    if (!hit) {
        PyObject *r = call_method((PyObject *)self, s_acquire_slow,
                                  subclass != NULL ? subclass : c_zero, Py_True, c_minus_one_f,
                                  as_arg(caller()), 4);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
        rc = 0;
        goto done;
    }
    PyObject *code, *lasti;
    if (caller_site(&code, &lasti) < 0)
        goto done;
    rc = take_and_push(self, held, key, nxt, code, lasti, 0);
done:
    Py_XDECREF(nxt);
    Py_XDECREF(key);
    Py_DECREF(held);
    return rc;
}

static PyObject *s_lock_names[1];

/* lock(subclass=0)'s argument: *subclass borrowed, or NULL when not given or false.
 * 0, or -1 with an exception. */
static int
lock_subclass(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **subclass)
{
    if (parse("lock", args, nargs, kwnames, s_lock_names, 1, subclass) < 0)
        return -1;
    if (*subclass != NULL) {
        int truth = PyObject_IsTrue(*subclass);
        if (truth < 0)
            return -1;
        if (!truth)
            *subclass = NULL;
    }
    return 0;
}

static PyObject *
mutex_lock(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *subclass;
    if (lock_subclass(args, nargs, kwnames, &subclass) < 0)
        return NULL;
    if (mutex_take((LockCore *)self, subclass) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
mutex_enter(PyObject *self, PyObject *unused)
{
    if (mutex_take((LockCore *)self, NULL) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *s_acquire_names[2];

static PyObject *
mutex_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *given[2];
    if (parse("acquire", args, nargs, kwnames, s_acquire_names, 2, given) < 0)
        return NULL;
    int plain = plain_blocking(given[0], given[1]);
    if (plain < 0)
        return NULL;
    if (plain) {
        /* Only a cache hit is taken here; a miss goes to _acquire_args, as in Python. */
        LockCore *core = (LockCore *)self;
        PyObject *held = held_now();
        if (held == NULL)
            return NULL;
        PyObject *node = top_chain(held), *nxt = NULL;
        int hit = node != NULL ? cached(node, core->fkey, &nxt) : -1;
        if (hit > 0) {
            PyObject *code, *lasti;
            int rc = caller_site(&code, &lasti);
            if (rc == 0)
                rc = take_and_push(core, held, core->fkey, nxt, code, lasti, 0);
            Py_DECREF(nxt);
            Py_DECREF(held);
            if (rc < 0)
                return NULL;
            Py_RETURN_TRUE;
        }
        Py_DECREF(held);
        if (hit < 0)
            return NULL;
    }
    return call_method(self, s_acquire_args, given[0] != NULL ? given[0] : Py_True,
                       given[1] != NULL ? given[1] : c_minus_one, as_arg(caller()), NULL, 3);
}

static PyObject *
mutex_try_lock(PyObject *self, PyObject *unused)
{
    LockCore *core = (LockCore *)self;
    PyObject *key = core->fkey;
    if (key != NULL && key != Py_None) {
        /* A trylock is never checked: only its cached chain node is needed. */
        PyObject *held = held_now();
        if (held == NULL)
            return NULL;
        PyObject *result = NULL, *nxt = NULL, *node;
        PyObject *trykey = PyNumber_Or(key, c_one);
        if (trykey == NULL || (node = top_chain(held)) == NULL)
            goto done;
        int hit = cached(node, trykey, &nxt);
        if (hit < 0)
            goto done;
        if (hit) {
            PyObject *args[2] = {core->lock, Py_False};
            PyObject *got = raw_call(0, args, 2);
            int taken = got != NULL ? PyObject_IsTrue(got) : -1;
            Py_XDECREF(got);
            if (taken <= 0) {
                if (taken == 0)
                    result = Py_NewRef(Py_False);
                goto done;
            }
            PyObject *code, *lasti, *entry;
            if (caller_site(&code, &lasti) < 0 ||
                (entry = make_entry(self, trykey, nxt, code, lasti, NULL)) == NULL) {
                PyObject *exc_type, *exc, *tb;
                PyErr_Fetch(&exc_type, &exc, &tb);
                if (call_raw(core->lock, s_release) < 0)
                    PyErr_Clear();
                PyErr_Restore(exc_type, exc, tb);
                goto done;
            }
            if (push_taken(core, held, entry) == 0)
                result = Py_NewRef(Py_True);
        }
    done:
        Py_XDECREF(nxt);
        Py_XDECREF(trykey);
        Py_DECREF(held);
        if (result != NULL || PyErr_Occurred())
            return result;
    }
    return call_method(self, s_acquire_slow, c_zero, Py_False, c_minus_one_f, as_arg(caller()),
                       4);
}

static PyObject *
mutex_unlock(PyObject *self, PyObject *unused)
{
    PyObject *held = held_now();
    if (held == NULL)
        return NULL;
    int done = pop_and_release((LockCore *)self, held);
    Py_DECREF(held);
    if (done < 0)
        return NULL;
    if (done)
        Py_RETURN_NONE;
    PyObject *r = call_method(self, s_release_slow, as_arg(caller()), NULL, NULL, NULL, 1);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* __exit__'s arguments, as Python checks them for a method (self, exc_type, exc, tb):
 * 0, or -1 with TypeError. */
static int
exit_arguments(Py_ssize_t nargs)
{
    if (nargs == 3)
        return 0;
    PyErr_Format(PyExc_TypeError, "__exit__() takes 4 positional arguments but %zd were given",
                 nargs + 1);
    return -1;
}

static PyObject *
mutex_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (exit_arguments(nargs) < 0)
        return NULL;
    return mutex_unlock(self, NULL);
}

/* --- the plain mode (lockdep off): the raw lock, and the owner recorded ---------------- */

/* Take the raw lock with args (args[0] is the raw lock) and record the owner if taken:
 * 1, 0 (not taken), or -1. */
static int
plain_take(LockCore *self, PyObject **args, size_t nargs)
{
    args[0] = self->lock;
    PyObject *got = raw_call(0, args, nargs);
    if (got == NULL)
        return -1;
    int taken = got == Py_True ? 1 : PyObject_IsTrue(got);
    Py_DECREF(got);
    if (taken > 0)
        self->owner = PyThread_get_thread_ident();
    return taken;
}

static PyObject *
plain_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *given[2];
    if (parse("acquire", args, nargs, kwnames, s_acquire_names, 2, given) < 0)
        return NULL;
    PyObject *call[3] = {NULL, given[0] != NULL ? given[0] : Py_True,
                         given[1] != NULL ? given[1] : c_minus_one};
    int taken = plain_take((LockCore *)self, call, 3);
    if (taken < 0)
        return NULL;
    return PyBool_FromLong(taken);
}

static PyObject *
plain_lock(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *subclass;
    if (lock_subclass(args, nargs, kwnames, &subclass) < 0)
        return NULL;
    if (subclass != NULL) {
        PyObject *checked = PyObject_CallOneArg(g_check_subclass, subclass);
        if (checked == NULL)
            return NULL;
        Py_DECREF(checked);
    }
    PyObject *call[1];
    if (plain_take((LockCore *)self, call, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
plain_enter(PyObject *self, PyObject *unused)
{
    PyObject *call[1];
    if (plain_take((LockCore *)self, call, 1) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *
plain_try_lock(PyObject *self, PyObject *unused)
{
    PyObject *call[2] = {NULL, Py_False};
    int taken = plain_take((LockCore *)self, call, 2);
    if (taken < 0)
        return NULL;
    return PyBool_FromLong(taken);
}

static PyObject *
plain_unlock(PyObject *self, PyObject *unused)
{
    LockCore *core = (LockCore *)self;
    core->owner = 0;
    if (call_raw(core->lock, s_release) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
plain_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (exit_arguments(nargs) < 0)
        return NULL;
    return plain_unlock(self, NULL);
}

/* --- install()'s TrackedLock and TrackedRLock --------------------------------------- */

/* lock.locked() (Mutex.is_locked): for a non-recursive lock that is its raw lock's
 * locked(), asked directly; else the method. 1, 0, or -1 on error. */
static int
is_locked(PyObject *lock, PyObject *raw)
{
    PyObject *target = raw != NULL && Py_IS_TYPE(raw, t_lock) ? raw : lock;
    PyObject *r = PyObject_VectorcallMethod(s_locked, &target, 1, NULL);
    int locked = r != NULL ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    return locked;
}

static int
instance_number(PyObject *lock, Py_ssize_t *number)
{
    if (PyObject_TypeCheck(lock, &LockCoreType)) {
        *number = ((LockCore *)lock)->node;
        return 0;
    }
    PyObject *n = PyObject_GetAttr(lock, s_lockdep_node);
    if (n == NULL)
        return -1;
    *number = PyLong_AsSsize_t(n);
    Py_DECREF(n);
    return *number == -1 && PyErr_Occurred() ? -1 : 0;
}

/* checks.Checker.validated_again: whether taking lock (a class held already) on top
 * of held was validated before. 1, 0, or -1 on error. */
static int
validated_again(LockCore *lock, PyObject *key, PyObject *held, PyObject *node)
{
    int rc = 0;
    PyObject *same = field_get(&f_same, node, s_same);
    if (same == NULL)
        return -1;
    if (!PyDict_Check(same)) {
        Py_DECREF(same);
        return 0; /* None: nothing validated again on this chain */
    }
    PyObject *guards = PyDict_GetItemWithError(same, key);
    Py_XINCREF(guards);
    Py_DECREF(same);
    if (guards == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyList_GET_SIZE(held) < 1) {
        Py_DECREF(guards);
        return 0;
    }
    PyObject *top = PyList_GET_ITEM(held, PyList_GET_SIZE(held) - 1);
    Py_INCREF(top);
    PyObject *previous = NULL;
    int equal = PyTuple_Check(top) && PyTuple_GET_SIZE(top) > 1
                    ? PyObject_RichCompareBool(PyTuple_GET_ITEM(top, 1), key, Py_EQ)
                    : 0;
    if (equal <= 0) { /* the same class, subclass, blocking */
        rc = equal;
        goto done;
    }
    previous = Py_NewRef(PyTuple_GET_ITEM(top, 0));
    if (previous == (PyObject *)lock)
        goto done; /* maybe held by this thread: the whole check */
    int locked = is_locked((PyObject *)lock, lock->lock);
    if (locked) {
        rc = locked < 0 ? -1 : 0;
        goto done;
    }
    Py_ssize_t source, target = lock->node;
    if (instance_number(previous, &source) < 0) {
        rc = -1;
        goto done;
    }
    if (!source || !target)
        goto done;
    PyObject *pair;
    if (source > 0 && source < ((Py_ssize_t)1 << 30) && target > 0 && target <= 0xFFFFFFFFLL)
        pair = PyLong_FromLongLong(((long long)source << 32) | (long long)target);
    else {
        PyObject *s = PyLong_FromSsize_t(source), *t = PyLong_FromSsize_t(target);
        PyObject *shift = PyLong_FromLong(32);
        PyObject *shifted = s && shift ? PyNumber_Lshift(s, shift) : NULL;
        pair = shifted && t ? PyNumber_Or(shifted, t) : NULL;
        Py_XDECREF(s);
        Py_XDECREF(t);
        Py_XDECREF(shift);
        Py_XDECREF(shifted);
    }
    if (pair == NULL) {
        rc = -1;
        goto done;
    }
    PyObject *info = PyDict_GetItemWithError(g_known, pair);
    Py_XINCREF(info);
    Py_DECREF(pair);
    if (info == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    PyObject *info_guards = PyObject_GetAttr(info, s_guards);
    Py_DECREF(info);
    if (info_guards == NULL) {
        rc = -1;
        goto done;
    }
    int some = PyObject_IsTrue(info_guards);
    if (some <= 0)
        rc = some < 0 ? -1 : 1;
    else
        rc = PyObject_RichCompareBool(info_guards, guards, Py_LE);
    Py_DECREF(info_guards);
done:
    Py_XDECREF(previous);
    Py_DECREF(top);
    Py_DECREF(guards);
    return rc;
}

/* The tracker's fast mode for a recursive lock its thread holds already (checks.
 * Checker.again's first case), without the trip through Python: 1 when taken and
 * pushed as a re-entry, 0 when not that case, -1 on error. */
static int
reentered(LockCore *self, PyObject *key, PyObject *held, PyObject *node, PyObject *code,
          PyObject *lasti)
{
    PyObject *raw = self->lock;
    if (raw == NULL || !Py_IS_TYPE(raw, t_rlock) || !PyLong_CheckExact(key))
        return 0;
    int busy = busy_now();
    if (busy != 0)
        return busy < 0 ? -1 : 0; /* inside lockdep: untracked, as the tracker does */
    PyObject *owned = raw_method_call(&d_rlock_is_owned, raw);
    int mine = owned != NULL ? PyObject_IsTrue(owned) : -1;
    Py_XDECREF(owned);
    if (mine <= 0)
        return mine;
    PyObject *classes = field_get(&f_classes, node, s_classes);
    if (classes == NULL)
        return -1;
    int overflow;
    long k = PyLong_AsLongAndOverflow(key, &overflow);
    PyObject *graph_key = k == -1 && PyErr_Occurred() ? NULL
                          : overflow ? PyNumber_Rshift(key, c_two) /* keys.graph_key */
                                     : PyLong_FromLong(k >> 2);
    int in = graph_key != NULL ? PySequence_Contains(classes, graph_key) : -1;
    Py_XDECREF(graph_key);
    Py_DECREF(classes);
    if (in <= 0)
        return in;
    PyObject *entry = make_entry((PyObject *)self, key, node, Py_NewRef(code), Py_NewRef(lasti),
                                 Py_NewRef(g_reentry));
    if (entry == NULL)
        return -1;
    if (call_raw(raw, s_acquire) < 0) {
        Py_DECREF(entry);
        return -1;
    }
    self->pos = PyList_GET_SIZE(held);
    return push_taken(self, held, entry) < 0 ? -1 : 1;
}

/* TrackedLock.acquire (and __enter__) for a plain blocking acquire. */
static PyObject *
tracked_take(LockCore *self)
{
    PyObject *held = held_now();
    if (held == NULL)
        return NULL;
    PyObject *key = Py_XNewRef(self->fkey), *nxt = NULL, *node = NULL, *result = NULL;
    PyObject *code = NULL, *lasti = NULL;
    node = top_chain(held);
    if (node == NULL)
        goto done;
    Py_INCREF(node);
    int hit = cached(node, key, &nxt);
    if (hit < 0 || user_site(&code, &lasti) < 0)
        goto done;
    if (hit) {
        int rc = take_and_push(self, held, key, nxt, code, lasti, 0);
        code = lasti = NULL; /* taken */
        if (rc == 0)
            result = Py_NewRef(Py_True);
        goto done;
    }
    if (key != NULL && key != Py_None) {
        int again = validated_again(self, key, held, node);
        if (again < 0)
            goto done;
        if (again) { /* a known nesting of two instances of one class */
            int rc = take_and_push(self, held, key, node, code, lasti, 1);
            code = lasti = NULL;
            if (rc == 0)
                result = Py_NewRef(Py_True);
            goto done;
        }
    }
    if (key != NULL) {
        int again = reentered(self, key, held, node, code, lasti);
        if (again < 0)
            goto done;
        if (again) {
            result = Py_NewRef(Py_True);
            goto done;
        }
    }
    /* Not cached (a class the thread holds already, say): to the tracker at once,
     * with the site's frame. */
    PyFrameObject *frame = user_frame(caller());
    if (frame != NULL || !PyErr_Occurred())
        result = call_method((PyObject *)self, s_acquire_missed, as_arg(frame), NULL, NULL, NULL,
                             1);
    Py_XDECREF(frame);
done:
    Py_XDECREF(code);
    Py_XDECREF(lasti);
    Py_XDECREF(nxt);
    Py_XDECREF(node);
    Py_XDECREF(key);
    Py_DECREF(held);
    return result;
}

static PyObject *
tracked_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL) /* acquire(), and __enter__ */
        return tracked_take((LockCore *)self);
    PyObject *given[2];
    if (parse("acquire", args, nargs, kwnames, s_acquire_names, 2, given) < 0)
        return NULL;
    int plain = plain_blocking(given[0], given[1]);
    if (plain < 0)
        return NULL;
    if (plain)
        return tracked_take((LockCore *)self);
    return call_method(self, s_acquire_args, given[0] != NULL ? given[0] : Py_True,
                       given[1] != NULL ? given[1] : c_minus_one, as_arg(caller()), NULL, 3);
}

static PyObject *
tracked_release(PyObject *self, PyObject *unused)
{
    PyObject *held = held_now();
    if (held == NULL)
        return NULL;
    int done = pop_and_release((LockCore *)self, held);
    Py_DECREF(held);
    if (done < 0)
        return NULL;
    if (!done) {
        /* No unlock report for a Lock: no frame needed. */
        PyObject *r = call_method(self, s_release_slow, Py_None, NULL, NULL, NULL, 1);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyObject *
tracked_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return tracked_release(self, NULL);
}

/* --- making install()'s locks -------------------------------------------------------
 *
 * threading.Lock() and threading.RLock() after install() (instrument.Lock and
 * RLock, TrackedLock._make): the lock's class is its role (roles.class_tkey),
 * which roles also keeps in a dict C can read (roles.FAST, by site key: the
 * code object's address >> 3, shifted, | the instruction offset), either the
 * class's key itself or, for a lock made in a method, the keys by id(type(self)).
 * On a hit the lock is made here; on a miss roles.class_tkey decides, in Python.
 */

static PyObject *g_sites;         /* roles.FAST */
static PyObject *g_class_tkey;    /* roles.class_tkey(frame) */
static PyTypeObject *g_lock_type; /* instrument.TrackedLock */
static PyTypeObject *g_rlock_type; /* instrument.TrackedRLock */
static int g_lock_policy, g_rlock_policy; /* checks.BINARY, checks.INSTANCES */
static PyObject *g_py_lock, *g_py_rlock;  /* instrument.Lock, RLock: for what C leaves */
static PyObject *g_allocate_lock; /* _thread.allocate_lock */
static PyObject *s_self, *c_empty;

#define SITE_LASTI_BITS 20

/* frame's instruction offset, as frame.f_lasti: >= 0, or -1 (with an exception when
 * an error). */
static long
frame_lasti(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    int lasti = PyFrame_GetLasti(frame);
    return lasti < 0 ? -1 : lasti;
#else
    PyObject *value = PyObject_GetAttr((PyObject *)frame, s_f_lasti);
    long lasti = value != NULL ? PyLong_AsLong(value) : -1;
    Py_XDECREF(value);
    return lasti;
#endif
}

/* frame's local "self": a new reference, or NULL (an exception only on error). */
static PyObject *
frame_self(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *self = PyFrame_GetVar(frame, s_self);
    if (self == NULL && PyErr_ExceptionMatches(PyExc_NameError))
        PyErr_Clear();
    return self;
#else
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *locals = PyFrame_GetLocals(frame);
#else
    PyObject *locals = PyObject_GetAttrString((PyObject *)frame, "f_locals");
#endif
    if (locals == NULL)
        return NULL;
    PyObject *self = NULL;
    if (PyDict_Check(locals)) {
        self = PyDict_GetItemWithError(locals, s_self);
        Py_XINCREF(self);
    }
    Py_DECREF(locals);
    return self;
#endif
}

/* The class key (an int, or None: untracked) of a lock made at frame's current
 * instruction, as roles.class_tkey(frame) gives it: a new reference, or NULL. */
static PyObject *
role_of(PyFrameObject *frame)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    uintptr_t address = (uintptr_t)code >> 3; /* unique among live objects */
    Py_DECREF(code); /* the frame keeps it */
    long lasti = frame_lasti(frame);
    if (lasti < 0 && PyErr_Occurred())
        return NULL;
    if (g_sites != NULL && lasti >= 0 && lasti < (1L << SITE_LASTI_BITS) &&
        (unsigned long long)address >> (64 - SITE_LASTI_BITS) == 0) {
        PyObject *key = PyLong_FromUnsignedLongLong(
            ((unsigned long long)address << SITE_LASTI_BITS) | (unsigned long long)lasti);
        if (key == NULL)
            return NULL;
        PyObject *found = PyDict_GetItemWithError(g_sites, key); /* borrowed */
        Py_DECREF(key);
        if (found == NULL && PyErr_Occurred())
            return NULL;
        if (found != NULL && PyLong_CheckExact(found))
            return Py_NewRef(found);
        if (found != NULL && PyDict_CheckExact(found)) {
            Py_INCREF(found); /* frame_self may run code that changes g_sites */
            PyObject *self = frame_self(frame), *tkey = NULL;
            if (self != NULL) {
                PyObject *type_id = PyLong_FromVoidPtr((void *)Py_TYPE(self));
                tkey = type_id != NULL ? PyDict_GetItemWithError(found, type_id) : NULL;
                Py_XINCREF(tkey);
                Py_XDECREF(type_id);
                Py_DECREF(self);
            }
            Py_DECREF(found);
            if (tkey != NULL)
                return tkey;
            if (PyErr_Occurred())
                return NULL;
        }
    }
    return PyObject_CallOneArg(g_class_tkey, (PyObject *)frame);
}

/* A new lock of type cls (TrackedLock or TrackedRLock, or a subclass) of class tkey
 * (stolen), as TrackedLock._make makes it. */
static PyObject *
make_keyed(PyTypeObject *cls, PyObject *tkey)
{
    int recursive = PyType_IsSubtype(cls, g_rlock_type);
    PyObject *raw = PyObject_CallNoArgs(recursive ? (PyObject *)t_rlock : g_allocate_lock);
    if (raw == NULL) {
        Py_DECREF(tkey);
        return NULL;
    }
    LockCore *self = (LockCore *)cls->tp_alloc(cls, 0);
    if (self == NULL) {
        Py_DECREF(raw);
        Py_DECREF(tkey);
        return NULL;
    }
    /* Zeroed: _id -1, _owner, _lockdep_node, _lockdep_pos 0, _backtrace False. */
    self->lock = raw;
    self->fkey = Py_NewRef(tkey);
    self->tkey = tkey;
    self->name = Py_NewRef(c_empty);
    self->recursive = (char)recursive;
    self->policy = recursive ? g_rlock_policy : g_lock_policy;
    return (PyObject *)self;
}

/* A new lock of type cls made at frame. */
static PyObject *
make_lock(PyTypeObject *cls, PyFrameObject *frame)
{
    PyObject *tkey = role_of(frame);
    return tkey != NULL ? make_keyed(cls, tkey) : NULL;
}

#ifdef LOCKDEP_IFRAMES
/* The interpreter's frame depth complete frames above the calling Python code's
 * (0: its own), as PyEval_GetFrame and PyFrame_GetBack walk; NULL past the top. */
static IFrame *
iframe_up(long depth)
{
    IFrame *frame = current_iframe();
    for (long i = 0; frame != NULL && i < depth; i++)
        frame = complete_frame(frame->previous);
    return frame;
}

/* frame's local "self" where it is a plain local: 1 and *self (borrowed; NULL when
 * unbound or absent), or 0 when only the frame object can say (a cell, say). */
static int
iframe_self(IFrame *frame, PyObject **self)
{
    PyCodeObject *code = iframe_code(frame);
    PyObject *names = code->co_localsplusnames;
    *self = NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (name != s_self && !(PyUnicode_CheckExact(name) && PyUnicode_Compare(name, s_self) == 0))
            continue;
        if (_PyLocals_GetKind(code->co_localspluskinds, (int)i) != CO_FAST_LOCAL)
            return 0;
        *self = frame->localsplus[i];
        return 1;
    }
    return 1;
}

/* role_of for the interpreter's frame, when roles.FAST knows the site (and, for a
 * method, the type of self): 1 and *tkey (a new reference), 0 when role_of must
 * decide with the frame object, -1 on error. */
static int
role_of_iframe(IFrame *frame, PyObject **tkey)
{
    uintptr_t address = (uintptr_t)iframe_code(frame) >> 3;
    long lasti = iframe_lasti(frame);
    if (g_sites == NULL || lasti < 0 || lasti >= (1L << SITE_LASTI_BITS) ||
        (unsigned long long)address >> (64 - SITE_LASTI_BITS) != 0)
        return 0;
    PyObject *key = PyLong_FromUnsignedLongLong(((unsigned long long)address << SITE_LASTI_BITS) |
                                                (unsigned long long)lasti);
    if (key == NULL)
        return -1;
    PyObject *found = PyDict_GetItemWithError(g_sites, key); /* borrowed */
    Py_DECREF(key);
    if (found == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyLong_CheckExact(found)) {
        *tkey = Py_NewRef(found);
        return 1;
    }
    PyObject *self;
    if (!PyDict_CheckExact(found) || !iframe_self(frame, &self) || self == NULL)
        return 0;
    Py_INCREF(found);
    PyObject *type_id = PyLong_FromVoidPtr((void *)Py_TYPE(self));
    PyObject *by_type = type_id != NULL ? PyDict_GetItemWithError(found, type_id) : NULL;
    Py_XDECREF(type_id);
    Py_DECREF(found);
    if (by_type == NULL)
        return PyErr_Occurred() ? -1 : 0;
    *tkey = Py_NewRef(by_type);
    return 1;
}
#endif

/* A new lock of type cls made depth frames above the calling Python code, where that
 * is done without frame objects (roles.FAST knows the site): NULL without an
 * exception when not (or where the interpreter's frames are not read). */
static PyObject *
make_known(PyTypeObject *cls, long depth)
{
#ifdef LOCKDEP_IFRAMES
    IFrame *at = depth >= 0 ? iframe_up(depth) : NULL;
    if (at != NULL) {
        PyObject *tkey;
        int known = role_of_iframe(at, &tkey);
        if (known < 0)
            return NULL;
        if (known)
            return make_keyed(cls, tkey);
    }
#endif
    return NULL;
}

/* A new lock of type cls made depth frames above the calling Python code (0: by it):
 * without a frame object when roles.FAST knows the site; NULL with ValueError when
 * the stack is not that deep. */
static PyObject *
make_up(PyTypeObject *cls, long depth)
{
    PyObject *lock = make_known(cls, depth);
    if (lock != NULL || PyErr_Occurred())
        return lock;
    PyFrameObject *frame = caller();
    Py_XINCREF(frame);
    for (long i = 0; frame != NULL && i < depth; i++)
        Py_SETREF(frame, PyFrame_GetBack(frame));
    if (frame == NULL || depth < 0) {
        Py_XDECREF(frame);
        PyErr_SetString(PyExc_ValueError, "call stack is not deep enough");
        return NULL;
    }
    lock = make_lock(cls, frame);
    Py_DECREF(frame);
    return lock;
}

static int
makers_bound(void)
{
    if (g_lock_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "lockdep._fastpath: bind_makers() was not called");
        return 0;
    }
    return 1;
}

/* threading.Lock() */
static PyObject *
new_lock(PyObject *module, PyObject *unused)
{
    if (!makers_bound())
        return NULL;
    PyObject *lock = make_known(g_lock_type, 0);
    if (lock != NULL || PyErr_Occurred())
        return lock;
    PyFrameObject *frame = caller();
    if (frame == NULL) /* called from C: what Python does then */
        return PyObject_CallNoArgs(g_py_lock);
    return make_lock(g_lock_type, frame);
}

/* threading.RLock(*args, **kwargs) */
static PyObject *
new_rlock(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (!makers_bound())
        return NULL;
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)) {
        PyObject *lock = make_known(g_rlock_type, 0);
        if (lock != NULL || PyErr_Occurred())
            return lock;
    }
    PyFrameObject *frame = caller();
    if (frame == NULL || nargs > 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0))
        return PyObject_Vectorcall(g_py_rlock, args, (size_t)nargs, kwnames); /* warns */
    return make_lock(g_rlock_type, frame);
}

/* make(cls, depth): a new lock of type cls made at the frame depth levels above the
 * calling Python function's (a Condition's own lock, say). */
static PyObject *
make_at(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "make(cls, depth) takes a lock type and an int");
        return NULL;
    }
    if (!makers_bound())
        return NULL;
    PyTypeObject *cls = (PyTypeObject *)args[0];
    if (!PyType_IsSubtype(cls, g_lock_type)) {
        PyErr_Format(PyExc_TypeError, "make: %R is not a TrackedLock type", args[0]);
        return NULL;
    }
    long depth = PyLong_AsLong(args[1]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    return make_up(cls, depth);
}

static PyMethodDef maker_defs[] = {
    {"Lock", new_lock, METH_NOARGS,
     "Lock()\n--\n\nA new tracked lock, of the class of the calling code's role."},
    {"RLock", FASTCALL_KW(new_rlock),
     "RLock(*args, **kwargs)\n--\n\nA new tracked re-entrant lock, of the class of the "
     "calling code's role."},
};

static PyObject *
fastpath_bind_makers(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"lock_type", "rlock_type", "lock_policy", "rlock_policy",
                             "class_tkey", "sites", "python_lock", "python_rlock", NULL};
    PyObject *lock_type, *rlock_type, *class_tkey, *sites, *py_lock, *py_rlock;
    int lock_policy, rlock_policy;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!iiOO!OO:bind_makers", kwlist,
                                     &PyType_Type, &lock_type, &PyType_Type, &rlock_type,
                                     &lock_policy, &rlock_policy, &class_tkey, &PyDict_Type,
                                     &sites, &py_lock, &py_rlock))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)lock_type, &LockCoreType) ||
        !PyType_IsSubtype((PyTypeObject *)rlock_type, (PyTypeObject *)lock_type)) {
        PyErr_SetString(PyExc_TypeError, "bind_makers: the lock types must be LockCore's");
        return NULL;
    }
    /* threading.Lock and RLock: their module is threading's (its __all__ test). */
    PyObject *where = PyUnicode_FromString("threading");
    PyObject *lock = where != NULL ? PyCFunction_NewEx(&maker_defs[0], NULL, where) : NULL;
    PyObject *rlock = lock != NULL ? PyCFunction_NewEx(&maker_defs[1], NULL, where) : NULL;
    Py_XDECREF(where);
    if (rlock == NULL) {
        Py_XDECREF(lock);
        return NULL;
    }
    Py_XSETREF(g_lock_type, (PyTypeObject *)Py_NewRef(lock_type));
    Py_XSETREF(g_rlock_type, (PyTypeObject *)Py_NewRef(rlock_type));
    g_lock_policy = lock_policy;
    g_rlock_policy = rlock_policy;
    Py_XSETREF(g_class_tkey, Py_NewRef(class_tkey));
    Py_XSETREF(g_sites, Py_NewRef(sites));
    Py_XSETREF(g_py_lock, Py_NewRef(py_lock));
    Py_XSETREF(g_py_rlock, Py_NewRef(py_rlock));
    return Py_BuildValue("(NN)", lock, rlock);
}

/* --- the method tables, as descriptors of LockCore ----------------------------------- */


static PyMethodDef mutex_fast_defs[] = {
    {"lock", FASTCALL_KW(mutex_lock),
     "lock($self, /, subclass=0)\n--\n\nTake the mutex, blocking; subclass (0..7) marks "
     "intended nesting of one class."},
    {"unlock", mutex_unlock, METH_NOARGS,
     "unlock($self, /)\n--\n\nRelease the mutex; the calling thread must hold it."},
    {"__enter__", mutex_enter, METH_NOARGS, "__enter__($self, /)\n--\n\nlock()."},
    {"__exit__", FASTCALL(mutex_exit), "__exit__($self, exc_type, exc, tb, /)\n--\n\nunlock()."},
    {"acquire", FASTCALL_KW(mutex_acquire),
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\nthreading.Lock-compatible: "
     "returns whether the mutex was taken."},
    {"try_lock", mutex_try_lock, METH_NOARGS,
     "try_lock($self, /)\n--\n\nTake the mutex if it is free; never blocks, never checked "
     "for order."},
    {NULL, NULL, 0, NULL},
};

/* Named as the methods they stand for (the docstrings' signatures need that). */
static PyMethodDef mutex_plain_defs[] = {
    {"lock", FASTCALL_KW(plain_lock),
     "lock($self, /, subclass=0)\n--\n\nTake the mutex, blocking (lockdep off)."},
    {"unlock", plain_unlock, METH_NOARGS, "unlock($self, /)\n--\n\nRelease the mutex."},
    {"__enter__", plain_enter, METH_NOARGS, "__enter__($self, /)\n--\n\nlock()."},
    {"__exit__", FASTCALL(plain_exit), "__exit__($self, exc_type, exc, tb, /)\n--\n\nunlock()."},
    {"acquire", FASTCALL_KW(plain_acquire),
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\nthreading.Lock-compatible: "
     "returns whether the lock was taken."},
    {"try_lock", plain_try_lock, METH_NOARGS,
     "try_lock($self, /)\n--\n\nTake the mutex if it is free; never blocks."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef tracked_fast_defs[] = {
    {"acquire", FASTCALL_KW(tracked_acquire),
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\nthreading.Lock.acquire."},
    {"release", tracked_release, METH_NOARGS, "release($self, /)\n--\n\nthreading.Lock.release."},
    {"__exit__", FASTCALL(tracked_exit), "__exit__($self, /, *exc)\n--\n\nrelease()."},
    {NULL, NULL, 0, NULL},
};

/* TrackedLock._is_owned and TrackedRLock._is_owned (threading.Condition's, called at
 * every notify): bool(self._lock.locked()), bool(self._lock._is_owned()). */
static PyObject *
owned_call(PyObject *self, PyObject *name, PyTypeObject *type, RawMethod *method)
{
    PyObject *raw = ((LockCore *)self)->lock;
    if (raw == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_lock");
        return NULL;
    }
    PyObject *r = Py_IS_TYPE(raw, type) ? raw_method_call(method, raw)
                                        : PyObject_VectorcallMethod(name, &raw, 1, NULL);
    if (r == NULL)
        return NULL;
    int truth = PyObject_IsTrue(r);
    Py_DECREF(r);
    return truth < 0 ? NULL : PyBool_FromLong(truth);
}

static PyObject *
lock_is_owned(PyObject *self, PyObject *unused)
{
    return owned_call(self, s_locked, t_lock, &d_lock_locked);
}

static PyObject *
rlock_is_owned(PyObject *self, PyObject *unused)
{
    return owned_call(self, s_is_owned, t_rlock, &d_rlock_is_owned);
}

static PyMethodDef owned_defs[] = {
    {"_is_owned", lock_is_owned, METH_NOARGS,
     "_is_owned($self, /)\n--\n\nWhether the lock is taken (a Lock has no owner)."},
    {"_is_owned", rlock_is_owned, METH_NOARGS,
     "_is_owned($self, /)\n--\n\nWhether the calling thread holds the lock."},
};

static PyObject *table(PyMethodDef *defs, const char *const *names, const int *which, int n);

/* --- Condition waits: install()'s locks' _release_save and _acquire_restore ----------
 *
 * threading.Condition.wait gives its lock back with lock._release_save() and takes it
 * again with lock._acquire_restore(saved), methods it binds when the Condition is
 * made: so these serve every mode and both implementations. They do in C what
 * Mutex's Python methods do in their common case - the fast mode, the lock alone on
 * the held stack, its re-take's chain cached, called by Condition.wait (a thin
 * wrapper: the site is its caller's, as there) - and call the Python methods for
 * everything else. bind_waits() gives them the Python methods and the mode.
 */

static PyObject *g_py_release_save, *g_py_acquire_restore; /* Mutex's methods */
static PyObject *g_retake_mask;  /* ~(keys.TRY | keys.READ): a re-take's key */
static PyObject *g_read_flag;    /* keys.READ */
static int g_waits_fast;         /* the fast mode, on the C implementation */
static PyObject *s_release_save, *s_acquire_restore;

static PyObject *
py_wait_method(PyObject *method, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    if (method == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "lockdep._fastpath: bind_waits() was not called");
        return NULL;
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *small[4];
    PyObject **all = nargs + nkw + 1 <= 4 ? small : PyMem_New(PyObject *, nargs + nkw + 1);
    if (all == NULL)
        return PyErr_NoMemory();
    all[0] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++)
        all[i + 1] = args[i];
    PyObject *r = PyObject_Vectorcall(method, all, (size_t)nargs + 1, kwnames);
    if (all != small)
        PyMem_Free(all);
    return r;
}

/* Whether the calling Python code is one of the thin wrappers: 1, 0, -1. */
static int
caller_is_thin(void)
{
#ifdef LOCKDEP_IFRAMES
    IFrame *frame = current_iframe();
    return frame != NULL ? is_thin(iframe_code(frame)) : 0;
#else
    PyFrameObject *frame = caller();
    if (frame == NULL)
        return 0;
    PyCodeObject *code = PyFrame_GetCode(frame);
    int thin = is_thin(code);
    Py_DECREF(code);
    return thin;
#endif
}

/* Mutex._release_save: (entries, raw state). */
static PyObject *
wait_release_save(PyObject *self, PyObject *unused)
{
    LockCore *core = (LockCore *)self;
    if (!g_waits_fast || core->lock == NULL)
        return py_wait_method(g_py_release_save, self, NULL, 0, NULL);
    PyObject *held = held_now();
    if (held == NULL)
        return NULL;
    /* mutex._only_on_top: the lock's only entry (in write mode) is the top one; the
     * entries below are other locks' or tombstones. */
    Py_ssize_t n = PyList_GET_SIZE(held);
    PyObject *top = n >= 2 ? PyList_GET_ITEM(held, n - 1) : NULL;
    int only = top != NULL && PyTuple_Check(top) && PyTuple_GET_SIZE(top) >= 2 &&
               PyTuple_GET_ITEM(top, 0) == self;
    if (only) {
        PyObject *read = PyNumber_And(PyTuple_GET_ITEM(top, 1), g_read_flag);
        int truth = read != NULL ? PyObject_IsTrue(read) : -1;
        Py_XDECREF(read);
        if (truth < 0) {
            Py_DECREF(held);
            return NULL;
        }
        only = !truth;
    }
    for (Py_ssize_t i = 1; only && i < n - 1; i++) {
        PyObject *e = PyList_GET_ITEM(held, i);
        only = PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= 1 && PyTuple_GET_ITEM(e, 0) != self;
    }
    if (!only) {
        Py_DECREF(held);
        return py_wait_method(g_py_release_save, self, NULL, 0, NULL);
    }
    /* What pop_entry does for the top entry (no statistics in this mode): the top off,
     * and the tombstones it leaves on top. */
    Py_ssize_t keep = n - 1;
    while (keep > 1 && PyTuple_GET_ITEM(PyList_GET_ITEM(held, keep - 1), 0) == Py_None)
        keep--;
    PyObject *entries = PyList_New(1);
    if (entries == NULL) {
        Py_DECREF(held);
        return NULL;
    }
    PyList_SET_ITEM(entries, 0, Py_NewRef(top));
    int rc = PyList_SetSlice(held, keep, n, NULL);
    Py_DECREF(held);
    if (rc < 0) {
        Py_DECREF(entries);
        return NULL;
    }
    core->owner = 0;
    PyObject *state;
    if (core->recursive)
        state = PyObject_CallMethodNoArgs(core->lock, s_release_save);
    else
        state = call_raw(core->lock, s_release) < 0 ? NULL : Py_NewRef(Py_None);
    if (state == NULL) {
        Py_DECREF(entries);
        return NULL;
    }
    return Py_BuildValue("(NN)", entries, state);
}

/* The raw re-take: raw._acquire_restore(state) for an RLock, raw.acquire() else. */
static int
raw_retake(LockCore *core, PyObject *state)
{
    if (!core->recursive)
        return call_raw(core->lock, s_acquire);
    PyObject *r = PyObject_CallMethodOneArg(core->lock, s_acquire_restore, state);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* Mutex._acquire_restore(saved, frame=None). */
static PyObject *
wait_acquire_restore(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    LockCore *core = (LockCore *)self;
    if (!g_waits_fast || kwnames != NULL || nargs != 1 || core->lock == NULL || core->backtrace)
        return py_wait_method(g_py_acquire_restore, self, args, nargs, kwnames);
    PyObject *saved = args[0], *entries, *entry;
    if (!PyTuple_CheckExact(saved) || PyTuple_GET_SIZE(saved) != 2 ||
        !PyList_CheckExact(entries = PyTuple_GET_ITEM(saved, 0)) ||
        PyList_GET_SIZE(entries) != 1 || !PyTuple_Check(entry = PyList_GET_ITEM(entries, 0)) ||
        PyTuple_GET_SIZE(entry) < 2)
        return py_wait_method(g_py_acquire_restore, self, args, nargs, kwnames);
    int thin = caller_is_thin();
    if (thin <= 0)
        return thin < 0 ? NULL : py_wait_method(g_py_acquire_restore, self, args, nargs, kwnames);
    PyObject *key = PyNumber_And(PyTuple_GET_ITEM(entry, 1), g_retake_mask);
    if (key == NULL)
        return NULL;
    PyObject *held = held_now(), *nxt = NULL, *code = NULL, *lasti = NULL, *result = NULL;
    if (held == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *node = top_chain(held);
    int hit = node != NULL ? cached(node, key, &nxt) : -1;
    int busy = hit > 0 ? busy_now() : 0;
    if (hit < 0 || busy < 0)
        goto done;
    if (!hit || busy) {
        result = py_wait_method(g_py_acquire_restore, self, args, nargs, kwnames);
        goto done;
    }
    if (user_site(&code, &lasti) < 0)
        goto done;
    /* As Python: held after a wait whatever happened (a failed re-take is tried
     * again), recorded, and then the re-take's error raised. */
    PyObject *exc_type = NULL, *exc = NULL, *tb = NULL;
    if (raw_retake(core, PyTuple_GET_ITEM(saved, 1)) < 0) {
        PyErr_Fetch(&exc_type, &exc, &tb);
        if (raw_retake(core, PyTuple_GET_ITEM(saved, 1)) < 0)
            goto drop;
    }
    core->pos = PyList_GET_SIZE(held);
    PyObject *pushed = make_entry(self, key, nxt, code, lasti, NULL);
    code = lasti = NULL; /* taken */
    if (pushed == NULL || push_taken(core, held, pushed) < 0)
        goto drop;
    if (exc_type != NULL)
        PyErr_Restore(exc_type, exc, tb);
    else
        result = Py_NewRef(Py_None);
    goto done;
drop: /* another error is raised: the re-take's is dropped */
    Py_XDECREF(exc_type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
done:
    Py_XDECREF(code);
    Py_XDECREF(lasti);
    Py_XDECREF(nxt);
    Py_DECREF(held);
    Py_DECREF(key);
    return result;
}

static PyMethodDef wait_defs[] = {
    {"_release_save", wait_release_save, METH_NOARGS,
     "_release_save($self, /)\n--\n\nGive the lock back for a Condition wait: (entries, "
     "raw state)."},
    {"_acquire_restore", FASTCALL_KW(wait_acquire_restore),
     "_acquire_restore($self, saved, /, frame=None)\n--\n\nTake the lock again after a "
     "Condition wait."},
};

/* bind_waits(release_save, acquire_restore, retake_mask, read_flag): what the wait
 * methods call and read; returns {name: method} to put on install()'s lock type. */
static PyObject *
fastpath_bind_waits(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"release_save", "acquire_restore", "retake_mask", "read_flag",
                             NULL};
    PyObject *release_save, *acquire_restore, *mask, *read;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!O!:bind_waits", kwlist, &release_save,
                                     &acquire_restore, &PyLong_Type, &mask, &PyLong_Type, &read))
        return NULL;
    Py_XSETREF(g_py_release_save, Py_NewRef(release_save));
    Py_XSETREF(g_py_acquire_restore, Py_NewRef(acquire_restore));
    Py_XSETREF(g_retake_mask, Py_NewRef(mask));
    Py_XSETREF(g_read_flag, Py_NewRef(read));
    static const char *const names[] = {"_release_save", "_acquire_restore"};
    static const int which[] = {0, 1};
    return table(wait_defs, names, which, 2);
}

/* wait_mode(fast): whether the wait methods may take their C path (the fast mode on
 * the C implementation). */
static PyObject *
fastpath_wait_mode(PyObject *module, PyObject *fast)
{
    int truth = PyObject_IsTrue(fast);
    if (truth < 0)
        return NULL;
    g_waits_fast = truth;
    Py_RETURN_NONE;
}

/* A method table: {name: descriptor}, names[i] taking defs[i]'s function. */
static PyObject *
table(PyMethodDef *defs, const char *const *names, const int *which, int n)
{
    PyObject *dict = PyDict_New();
    for (int i = 0; dict != NULL && i < n; i++) {
        PyObject *descr = PyDescr_NewMethod(&LockCoreType, &defs[which[i]]);
        if (descr == NULL || PyDict_SetItemString(dict, names[i], descr) < 0)
            Py_CLEAR(dict);
        Py_XDECREF(descr);
    }
    return dict;
}

/* METHODS[kind, mode]: the methods of Mutex ("mutex") or TrackedLock ("tracked") in
 * the fast and plain modes, as mutex.MODES has them; METHODS["owned"]: the
 * _is_owned of TrackedLock ("lock") and TrackedRLock ("rlock"), in every mode. */
static PyObject *
method_tables(void)
{
    static const char *const mutex_names[] = {"lock", "unlock", "release", "__enter__",
                                              "__exit__", "acquire", "try_lock"};
    static const int mutex_which[] = {0, 1, 1, 2, 3, 4, 5};
    static const char *const tracked_names[] = {"acquire", "__enter__", "release", "__exit__"};
    static const int tracked_fast[] = {0, 0, 1, 2};
    static const int tracked_plain[] = {4, 4, 1, 3};
    PyObject *tables = PyDict_New();
    PyObject *entries[4][3] = {
        {Py_BuildValue("(ss)", "mutex", "fast"), table(mutex_fast_defs, mutex_names, mutex_which, 7)},
        {Py_BuildValue("(ss)", "mutex", "plain"), table(mutex_plain_defs, mutex_names, mutex_which, 7)},
        {Py_BuildValue("(ss)", "tracked", "fast"), table(tracked_fast_defs, tracked_names, tracked_fast, 4)},
        {Py_BuildValue("(ss)", "tracked", "plain"), table(mutex_plain_defs, tracked_names, tracked_plain, 4)},
    };
    for (int i = 0; i < 4; i++) {
        if (tables != NULL &&
            (entries[i][0] == NULL || entries[i][1] == NULL ||
             PyDict_SetItem(tables, entries[i][0], entries[i][1]) < 0))
            Py_CLEAR(tables);
        Py_XDECREF(entries[i][0]);
        Py_XDECREF(entries[i][1]);
    }
    PyObject *owned = PyDict_New();
    PyObject *lock_owned = PyDescr_NewMethod(&LockCoreType, &owned_defs[0]);
    PyObject *rlock_owned = PyDescr_NewMethod(&LockCoreType, &owned_defs[1]);
    if (tables != NULL &&
        (owned == NULL || lock_owned == NULL || rlock_owned == NULL ||
         PyDict_SetItemString(owned, "lock", lock_owned) < 0 ||
         PyDict_SetItemString(owned, "rlock", rlock_owned) < 0 ||
         PyDict_SetItemString(tables, "owned", owned) < 0))
        Py_CLEAR(tables);
    Py_XDECREF(owned);
    Py_XDECREF(lock_owned);
    Py_XDECREF(rlock_owned);
    return tables;
}

/* --- module -------------------------------------------------------------------------- */

static PyObject *
fastpath_bind(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"local",  "subkey",     "check_subclass", "known", "thin_wrappers",
                             "extra",  "forget",     "state_type",     "chain_type", NULL};
    PyObject *local, *subkey, *check_subclass, *known, *thin, *extra, *forget, *state_type,
        *chain_type;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO!O!OOOO:bind", kwlist, &local, &subkey,
                                     &check_subclass, &PyDict_Type, &known, &PyDict_Type, &thin,
                                     &extra, &forget, &state_type, &chain_type))
        return NULL;
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (g_interp != NULL && g_interp != interp) {
        PyErr_SetString(PyExc_ImportError,
                        "lockdep._fastpath serves one interpreter: pure Python here");
        return NULL;
    }
    PyObject *thread = PyImport_ImportModule("_thread");
    if (thread == NULL)
        return NULL;
    PyObject *local_type = PyObject_GetAttrString(thread, "_local");
    Py_DECREF(thread);
    if (local_type == NULL)
        return NULL;
    int is_thread = PyObject_IsInstance(local, local_type);
    Py_DECREF(local_type);
    if (is_thread < 0)
        return NULL;
    if (field_bind(&f_busy, state_type, s_busy) < 0 ||
        field_bind(&f_classes, chain_type, s_classes) < 0 ||
        field_bind(&f_same, chain_type, s_same) < 0)
        return NULL;
    g_interp = interp;
    g_cache_id = 0;
    g_cache_held = g_cache_state = NULL;
    Py_XSETREF(g_local, Py_NewRef(local));
    Py_XSETREF(g_subkey, Py_NewRef(subkey));
    Py_XSETREF(g_check_subclass, Py_NewRef(check_subclass));
    Py_XSETREF(g_known, Py_NewRef(known));
    Py_XSETREF(g_thin, Py_NewRef(thin));
    thin_codes_clear();
    Py_XSETREF(g_reentry, Py_NewRef(extra));
    Py_XSETREF(g_forget, Py_NewRef(forget));
    g_local_is_thread = is_thread;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind_makers", (PyCFunction)(void (*)(void))fastpath_bind_makers,
     METH_VARARGS | METH_KEYWORDS,
     "bind_makers(lock_type, rlock_type, lock_policy, rlock_policy, class_tkey, sites, "
     "python_lock, python_rlock)\n--\n\nGive the lock makers install()'s types and roles; "
     "returns threading.Lock and RLock as install() puts them."},
    {"make", FASTCALL(make_at),
     "make($module, cls, depth, /)\n--\n\nA new lock of type cls, made at the frame depth "
     "levels above the calling function's."},
    {"bind_waits", (PyCFunction)(void (*)(void))fastpath_bind_waits,
     METH_VARARGS | METH_KEYWORDS,
     "bind_waits(release_save, acquire_restore, retake_mask, read_flag)\n--\n\nGive the "
     "Condition wait methods Mutex's Python ones and the key flags; returns the methods "
     "by name."},
    {"wait_mode", fastpath_wait_mode, METH_O,
     "wait_mode($module, fast, /)\n--\n\nWhether the wait methods may take their C "
     "path (the fast mode, on the C implementation)."},
    {"bind", (PyCFunction)(void (*)(void))fastpath_bind, METH_VARARGS | METH_KEYWORDS,
     "bind(local, subkey, check_subclass, known, thin_wrappers, extra, forget, state_type, "
     "chain_type)\n--\n\nGive the hot path the tracker's objects it reads, and the classes "
     "of the thread states and chain nodes whose fields it reads (see lockdep/fastpath.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lockdep._fastpath",
    .m_doc = "lockdep's validated-acquisition hot path in C (see lockdep.fastpath).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (intern(&s_held, "held") || intern(&s_state, "state") || intern(&s_busy, "busy") ||
        intern(&s_classes, "classes") || intern(&s_is_owned, "_is_owned") || intern(&s_same, "same") || intern(&s_guards, "guards") ||
        intern(&s_acquire, "acquire") || intern(&s_release, "release") ||
        intern(&s_locked, "locked") || intern(&s_lockdep_node, "_lockdep_node") ||
        intern(&s_acquire_slow, "_acquire_slow") ||
        intern(&s_acquire_missed, "_acquire_missed") ||
        intern(&s_acquire_args, "_acquire_args") || intern(&s_release_slow, "_release_slow") ||
        intern(&s_subclass, "subclass") || intern(&s_blocking, "blocking") ||
        intern(&s_timeout, "timeout") || intern(&s_tstate_key, "lockdep._fastpath.held") ||
        intern(&s_self, "self") || intern(&c_empty, "") ||
        intern(&s_release_save, "_release_save") ||
        intern(&s_acquire_restore, "_acquire_restore"))
        return NULL;
#if PY_VERSION_HEX < 0x030B0000
    if (intern(&s_f_lasti, "f_lasti"))
        return NULL;
#endif
#if PY_VERSION_HEX >= 0x030E0000
    if (intern(&s_co_filename, "co_filename") || intern(&s_co_name, "co_name"))
        return NULL;
#endif
    s_lock_names[0] = s_subclass;
    s_acquire_names[0] = s_blocking;
    s_acquire_names[1] = s_timeout;
    c_zero = PyLong_FromLong(0);
    c_one = PyLong_FromLong(1);
    c_two = PyLong_FromLong(2);
    c_minus_one = PyLong_FromLong(-1);
    c_minus_one_f = PyFloat_FromDouble(-1.0);
    c_zero_f = PyFloat_FromDouble(0.0);
    if (!c_zero || !c_one || !c_two || !c_minus_one || !c_minus_one_f || !c_zero_f)
        return NULL;

    PyObject *thread = PyImport_ImportModule("_thread");
    if (thread == NULL)
        return NULL;
    g_allocate_lock = PyObject_GetAttrString(thread, "allocate_lock");
    PyObject *raw = g_allocate_lock != NULL ? PyObject_CallNoArgs(g_allocate_lock) : NULL;
    PyObject *rlock = PyObject_GetAttrString(thread, "RLock");
    Py_DECREF(thread);
    if (raw == NULL || rlock == NULL || !PyType_Check(rlock)) {
        Py_XDECREF(raw);
        Py_XDECREF(rlock);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ImportError, "_thread.RLock is not a type");
        return NULL;
    }
    t_lock = (PyTypeObject *)Py_NewRef((PyObject *)Py_TYPE(raw));
    t_rlock = (PyTypeObject *)rlock;
    Py_DECREF(raw);
    c_empty_tuple = PyTuple_New(0);
    if (c_empty_tuple == NULL || raw_method_bind(&d_lock_acquire, t_lock, s_acquire) < 0 ||
        raw_method_bind(&d_lock_release, t_lock, s_release) < 0 ||
        raw_method_bind(&d_rlock_acquire, t_rlock, s_acquire) < 0 ||
        raw_method_bind(&d_rlock_release, t_rlock, s_release) < 0 ||
        raw_method_bind(&d_lock_locked, t_lock, s_locked) < 0 ||
        raw_method_bind(&d_rlock_is_owned, t_rlock, s_is_owned) < 0)
        return NULL;

    /* object.__new__ makes a LockCore subclass's instances (TrackedLock is made so). */
    LockCoreType.tp_new = PyBaseObject_Type.tp_new;
    if (PyType_Ready(&LockCoreType) < 0 || PyType_Ready(&HolderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastpath_module);
    if (m == NULL)
        return NULL;
    PyObject *tables = method_tables();
    if (tables == NULL || PyModule_AddObject(m, "METHODS", tables) < 0) {
        Py_XDECREF(tables);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&LockCoreType);
    if (PyModule_AddObject(m, "LockCore", (PyObject *)&LockCoreType) < 0) {
        Py_DECREF(&LockCoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
