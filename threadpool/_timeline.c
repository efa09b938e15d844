/* threadpool._timeline: the entries of a queue that takes deadlines, in C (see
 * timeline.py, which holds the same type in Python and says which one is used).
 *
 * A Timeline is a FIFO of a queue's entries (storage.py's module docstring says
 * what an entry is). It keeps an entry (expires, item) whose expiry is a float as
 * a double and a reference to the item, and hands it out as that tuple again;
 * every other entry (a list that is also on the heap, a tuple with a queueing
 * stamp) it keeps as the object itself, so that its identity is kept. The two
 * methods of the hot path, put() and take(), then cost a queue with deadlines
 * no tuple and no float per item, and the expiry is read from the same clock as
 * time.monotonic() without a Python call.
 *
 * Under the GIL every method is atomic: none calls back into Python before the
 * blocks are consistent again (a reference that goes away is dropped last, since
 * dropping it may run any code), exactly as collections.deque. It relies on the
 * GIL: it is not built for a free-threaded interpreter (setup.py) and not used
 * where the GIL is off (timeline.py).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

/* The entries live in blocks of BLOCKLEN, linked both ways, as collections.deque
 * keeps its items: a queue that grows by a burst takes blocks one at a time and
 * gives them back as it drains, never copying an entry; a few free blocks are
 * kept for the next ones. */
#define BLOCKLEN 64
#define CENTER ((BLOCKLEN - 1) / 2)
#define MAXFREEBLOCKS 16

typedef struct {
    double expires;  /* a compact entry's expiry; NaN for an entry kept as an object */
    PyObject *obj;   /* a compact entry's item; else the entry itself */
} Entry;

#define IS_COMPACT(e) ((e)->expires == (e)->expires) /* not NaN */

typedef struct block {
    struct block *left, *right;
    Entry data[BLOCKLEN];
} block;

typedef struct {
    PyObject_HEAD
    block *leftblock, *rightblock;
    Py_ssize_t leftindex;   /* the front entry: leftblock->data[leftindex] */
    Py_ssize_t rightindex;  /* the back entry: rightblock->data[rightindex] */
    Py_ssize_t size;        /* empty: one block, leftindex == rightindex + 1 */
    Py_ssize_t numfree;
    block *freeblocks[MAXFREEBLOCKS];
    double tail;
    PyObject *nothing;      /* what take() returns when the front cannot be taken */
} Timeline;

static PyObject *monotonic_fn;  /* time.monotonic, where the clock is not read here */

/* ---- the clock ---------------------------------------------------------------- */

static int
monotonic_now(double *out)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    if (PyTime_Monotonic(&t) < 0)
        return -1;
    *out = PyTime_AsSecondsDouble(t);
    return 0;
#elif defined(__linux__) && defined(CLOCK_MONOTONIC)
    /* time.monotonic() on Linux before 3.13: CLOCK_MONOTONIC in nanoseconds, as a
     * double of seconds computed the same way (_PyTime_AsSecondsDouble). */
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
        long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        if (ns % 1000000000LL == 0)
            *out = (double)(ns / 1000000000LL);
        else
            *out = (double)ns / 1e9;
        return 0;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
#else
    PyObject *r = PyObject_CallNoArgs(monotonic_fn);
    if (r == NULL)
        return -1;
    *out = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
#endif
}

/* ---- the blocks ---------------------------------------------------------------- */

static block *
new_block(Timeline *self)
{
    if (self->numfree)
        return self->freeblocks[--self->numfree];
    block *b = PyMem_Malloc(sizeof(block));
    if (b == NULL)
        PyErr_NoMemory();
    return b;
}

static void
free_block(Timeline *self, block *b)
{
    if (self->numfree < MAXFREEBLOCKS)
        self->freeblocks[self->numfree++] = b;
    else
        PyMem_Free(b);
}

/* A place in the blocks, to walk them entry by entry. */
typedef struct {
    block *b;
    Py_ssize_t i;
} Cursor;

static inline void
next(Cursor *c)
{
    if (++c->i == BLOCKLEN) {
        c->b = c->b->right;
        c->i = 0;
    }
}

static inline void
prev(Cursor *c)
{
    if (--c->i < 0) {
        c->b = c->b->left;
        c->i = BLOCKLEN - 1;
    }
}

/* The place of entry i (0 <= i < size), walked to from the nearer end. */
static Cursor
place(Timeline *self, Py_ssize_t i)
{
    Cursor c;
    if (i < self->size / 2) {
        Py_ssize_t n = self->leftindex + i;
        c.b = self->leftblock;
        for (; n >= BLOCKLEN; n -= BLOCKLEN)
            c.b = c.b->right;
        c.i = n;
    }
    else {
        Py_ssize_t n = self->rightindex - (self->size - 1 - i);
        c.b = self->rightblock;
        for (; n < 0; n += BLOCKLEN)
            c.b = c.b->left;
        c.i = n;
    }
    return c;
}

#define AT(c) ((c).b->data[(c).i])

/* Add an entry at the back or the front: -1 with MemoryError if a block is needed
 * and none can be had (nothing changed then). */
static int
push_back(Timeline *self, Entry e)
{
    if (self->rightindex == BLOCKLEN - 1) {
        block *b = new_block(self);
        if (b == NULL)
            return -1;
        b->left = self->rightblock;
        self->rightblock->right = b;
        self->rightblock = b;
        self->rightindex = -1;
    }
    self->rightblock->data[++self->rightindex] = e;
    self->size++;
    return 0;
}

static int
push_front(Timeline *self, Entry e)
{
    if (self->leftindex == 0) {
        block *b = new_block(self);
        if (b == NULL)
            return -1;
        b->right = self->leftblock;
        self->leftblock->left = b;
        self->leftblock = b;
        self->leftindex = BLOCKLEN;
    }
    self->leftblock->data[--self->leftindex] = e;
    self->size++;
    return 0;
}

/* After the last entry left: one block, the indices in its middle. */
static void
recenter(Timeline *self)
{
    self->leftindex = CENTER + 1;
    self->rightindex = CENTER;
}

/* Drop the front or the back entry from the blocks (not its reference). */
static void
drop_front(Timeline *self)
{
    self->leftindex++;
    self->size--;
    if (self->size == 0)
        recenter(self);
    else if (self->leftindex == BLOCKLEN) {
        block *b = self->leftblock;
        self->leftblock = b->right;
        self->leftindex = 0;
        free_block(self, b);
    }
}

static void
drop_back(Timeline *self)
{
    self->rightindex--;
    self->size--;
    if (self->size == 0)
        recenter(self);
    else if (self->rightindex == -1) {
        block *b = self->rightblock;
        self->rightblock = b->left;
        self->rightindex = BLOCKLEN - 1;
        free_block(self, b);
    }
}

/* An entry as stored: (float, item) compact, anything else (NaN expiry included) as
 * itself. Takes a new reference to what it keeps. */
static Entry
stored(PyObject *entry)
{
    Entry e;
    if (PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2 &&
        PyFloat_CheckExact(PyTuple_GET_ITEM(entry, 0))) {
        e.expires = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(entry, 0));
        if (IS_COMPACT(&e)) {
            e.obj = Py_NewRef(PyTuple_GET_ITEM(entry, 1));
            return e;
        }
    }
    e.expires = Py_NAN;
    e.obj = Py_NewRef(entry);
    return e;
}

/* The entry as the queue sees it: a new reference, NULL on error. Making the tuple
 * may run the garbage collector, and so any code, which may change the blocks: the
 * entry is read in full before. */
static PyObject *
entry_object(const Entry *e)
{
    if (!IS_COMPACT(e))
        return Py_NewRef(e->obj);
    PyObject *item = Py_NewRef(e->obj);
    PyObject *expires = PyFloat_FromDouble(e->expires);  /* floats are not collected */
    if (expires == NULL) {
        Py_DECREF(item);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(expires);
        Py_DECREF(item);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, expires);
    PyTuple_SET_ITEM(t, 1, item);
    return t;
}

static int
checked_index(Timeline *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->size) {
        PyErr_SetString(PyExc_IndexError, "Timeline index out of range");
        return -1;
    }
    return 0;
}

/* ---- the type ----------------------------------------------------------------- */

static PyObject *
Timeline_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *nothing;
    static char *kwlist[] = {"nothing", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Timeline", kwlist, &nothing))
        return NULL;
    Timeline *self = (Timeline *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    block *b = new_block(self);
    if (b == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    b->left = b->right = NULL;
    self->leftblock = self->rightblock = b;
    recenter(self);
    self->size = 0;
    self->tail = -Py_HUGE_VAL;
    self->nothing = Py_NewRef(nothing);
    return (PyObject *)self;
}

static int
Timeline_traverse(Timeline *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->nothing);
    Cursor c = {self->leftblock, self->leftindex};
    for (Py_ssize_t i = 0; i < self->size; i++, next(&c))
        Py_VISIT(AT(c).obj);
    return 0;
}

/* Empty the Timeline; the references are dropped once it is consistent. */
static void
drop_entries(Timeline *self)
{
    Py_ssize_t n = self->size;
    if (n == 0)
        return;
    PyObject **objs = PyMem_Malloc((size_t)n * sizeof(PyObject *));
    if (objs == NULL) {
        /* No room to set them aside: drop them one by one, front first. */
        while (self->size) {
            PyObject *obj = self->leftblock->data[self->leftindex].obj;
            drop_front(self);
            Py_DECREF(obj);
        }
        return;
    }
    Cursor c = {self->leftblock, self->leftindex};
    for (Py_ssize_t i = 0; i < n; i++, next(&c))
        objs[i] = AT(c).obj;
    while (self->leftblock != self->rightblock) {
        block *b = self->leftblock;
        self->leftblock = b->right;
        free_block(self, b);
    }
    self->leftblock->left = self->leftblock->right = NULL;
    self->size = 0;
    recenter(self);
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(objs[i]);
    PyMem_Free(objs);
}

static void
Timeline_dealloc(Timeline *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    drop_entries(self);
    Py_CLEAR(self->nothing);
    if (self->leftblock != NULL)  /* NULL if making the first block failed */
        PyMem_Free(self->leftblock);
    self->leftblock = self->rightblock = NULL;
    while (self->numfree)
        PyMem_Free(self->freeblocks[--self->numfree]);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
Timeline_tp_clear(Timeline *self)
{
    drop_entries(self);
    Py_CLEAR(self->nothing);
    return 0;
}

static Py_ssize_t
Timeline_len(Timeline *self)
{
    return self->size;
}

static PyObject *
Timeline_item(Timeline *self, Py_ssize_t i)
{
    if (checked_index(self, i) < 0)
        return NULL;
    Entry e = AT(place(self, i));  /* a copy: making the tuple may run code */
    return entry_object(&e);
}

static int
Timeline_ass_item(Timeline *self, Py_ssize_t i, PyObject *value)
{
    if (value != NULL) {
        PyErr_SetString(PyExc_TypeError, "Timeline entries cannot be replaced");
        return -1;
    }
    if (checked_index(self, i) < 0)
        return -1;
    Cursor dst = place(self, i);
    PyObject *obj = AT(dst).obj;
    Cursor src = dst;
    if (i < self->size / 2) {  /* the entries in front move back one */
        for (Py_ssize_t j = i; j > 0; j--) {
            prev(&src);
            AT(dst) = AT(src);
            dst = src;
        }
        drop_front(self);
    }
    else {  /* the entries behind move forward one */
        for (Py_ssize_t j = i; j < self->size - 1; j++) {
            next(&src);
            AT(dst) = AT(src);
            dst = src;
        }
        drop_back(self);
    }
    Py_DECREF(obj);
    return 0;
}

static PyObject *
Timeline_append(Timeline *self, PyObject *entry)
{
    Entry e = stored(entry);
    if (push_back(self, e) < 0) {
        Py_DECREF(e.obj);  /* a new reference to the caller's object: frees nothing */
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Timeline_appendleft(Timeline *self, PyObject *entry)
{
    Entry e = stored(entry);
    if (push_front(self, e) < 0) {
        Py_DECREF(e.obj);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Take the front entry off; its reference becomes the caller's. */
static PyObject *
pop_front(Timeline *self)
{
    PyObject *obj = self->leftblock->data[self->leftindex].obj;
    drop_front(self);
    return obj;
}

static PyObject *
Timeline_popleft(Timeline *self, PyObject *Py_UNUSED(ignored))
{
    /* A compact entry leaves as a new tuple, made before the entry leaves (making it
     * may fail, or run the garbage collector and so any code: the front is read again
     * after it). */
    PyObject *spare = NULL;
    for (;;) {
        if (self->size == 0) {
            Py_XDECREF(spare);
            PyErr_SetString(PyExc_IndexError, "pop from an empty Timeline");
            return NULL;
        }
        Entry *e = &self->leftblock->data[self->leftindex];
        if (!IS_COMPACT(e)) {
            Py_XDECREF(spare);  /* an empty tuple: freeing it runs no code */
            return pop_front(self);
        }
        if (spare == NULL) {
            spare = PyTuple_New(2);
            if (spare == NULL)
                return NULL;
            continue;
        }
        PyObject *expires = PyFloat_FromDouble(e->expires);  /* runs no code */
        if (expires == NULL) {
            Py_DECREF(spare);
            return NULL;
        }
        PyTuple_SET_ITEM(spare, 0, expires);
        PyTuple_SET_ITEM(spare, 1, pop_front(self));
        return spare;
    }
}

static PyObject *
Timeline_clear(Timeline *self, PyObject *Py_UNUSED(ignored))
{
    drop_entries(self);
    Py_RETURN_NONE;
}

/* put(item, deadline): append (now + deadline, item) and make it the tail, unless it
 * expires before the tail (out of order): then False, and nothing is appended. */
static PyObject *
Timeline_put(Timeline *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "put() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    double deadline = PyFloat_AsDouble(args[1]);
    if (deadline == -1.0 && PyErr_Occurred())
        return NULL;
    double now;
    if (monotonic_now(&now) < 0)
        return NULL;
    Entry e = {now + deadline, args[0]};
    if (!IS_COMPACT(&e)) {
        PyErr_SetString(PyExc_ValueError, "put(): the expiry is not a number");
        return NULL;
    }
    if (e.expires < self->tail)
        Py_RETURN_FALSE;
    if (push_back(self, e) < 0)
        return NULL;
    Py_INCREF(e.obj);
    self->tail = e.expires;
    Py_RETURN_TRUE;
}

/* take(now): the front item if its entry is (expires, item) with expires > now, taken
 * off; else ``nothing``, and the Timeline is left as it was. */
static PyObject *
Timeline_take(Timeline *self, PyObject *arg)
{
    double now = PyFloat_AsDouble(arg);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    if (self->size == 0 || !(self->leftblock->data[self->leftindex].expires > now))
        return Py_NewRef(self->nothing ? self->nothing : Py_None);  /* NaN: an object */
    return pop_front(self);
}

static PyObject *
Timeline_iter(Timeline *self)
{
    /* A snapshot, as a copy of a deque would be: producers may append meanwhile. The
     * entries are copied (with their references) before any object is made, since
     * making one may run code that changes the blocks. */
    Py_ssize_t n = self->size;
    Entry *copy = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
    if (copy == NULL)
        return PyErr_NoMemory();
    Cursor c = {self->leftblock, self->leftindex};
    for (Py_ssize_t i = 0; i < n; i++, next(&c)) {
        copy[i] = AT(c);
        Py_INCREF(copy[i].obj);
    }
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (list != NULL) {
            PyObject *o = entry_object(&copy[i]);
            if (o == NULL)
                Py_CLEAR(list);
            else
                PyList_SET_ITEM(list, i, o);
        }
        Py_DECREF(copy[i].obj);
    }
    PyMem_Free(copy);
    if (list == NULL)
        return NULL;
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

static PyObject *
Timeline_repr(Timeline *self)
{
    return PyUnicode_FromFormat("<Timeline of %zd entries>", self->size);
}

static PyObject *
Timeline_get_tail(Timeline *self, void *Py_UNUSED(closure))
{
    return PyFloat_FromDouble(self->tail);
}

static int
Timeline_set_tail(Timeline *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "tail cannot be deleted");
        return -1;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    self->tail = v;
    return 0;
}

static PyGetSetDef Timeline_getset[] = {
    {"tail", (getter)Timeline_get_tail, (setter)Timeline_set_tail,
     "Expiry of the last in-order entry (see storage.py).", NULL},
    {NULL},
};

static PyMethodDef Timeline_methods[] = {
    {"append", (PyCFunction)Timeline_append, METH_O, "Append an entry."},
    {"appendleft", (PyCFunction)Timeline_appendleft, METH_O, "Put an entry in front."},
    {"popleft", (PyCFunction)Timeline_popleft, METH_NOARGS, "Remove and return the front entry."},
    {"clear", (PyCFunction)Timeline_clear, METH_NOARGS, "Remove every entry."},
    {"put", (PyCFunction)(void (*)(void))Timeline_put, METH_FASTCALL,
     "put(item, deadline): append the in-order entry (now + deadline, item); False if "
     "it would be out of order."},
    {"take", (PyCFunction)Timeline_take, METH_O,
     "take(now): the front item of an (expires, item) entry not expired by now, or nothing."},
    {NULL},
};

static PyType_Slot Timeline_slots[] = {
    {Py_tp_doc, "The entries of a queue that takes deadlines (see threadpool/timeline.py)."},
    {Py_tp_new, Timeline_new},
    {Py_tp_dealloc, Timeline_dealloc},
    {Py_tp_traverse, Timeline_traverse},
    {Py_tp_clear, Timeline_tp_clear},
    {Py_tp_iter, Timeline_iter},
    {Py_tp_repr, Timeline_repr},
    {Py_tp_methods, Timeline_methods},
    {Py_tp_getset, Timeline_getset},
    {Py_sq_length, Timeline_len},
    {Py_sq_item, Timeline_item},
    {Py_sq_ass_item, Timeline_ass_item},
    {0, NULL},
};

static PyType_Spec Timeline_spec = {
    .name = "threadpool._timeline.Timeline",
    .basicsize = sizeof(Timeline),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Timeline_slots,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "threadpool._timeline",
    .m_doc = "The entries of a queue that takes deadlines, in C (see threadpool/timeline.py).",
    .m_size = -1,
};

/* Single-phase: one interpreter's module (time.monotonic is kept in a static). */
PyMODINIT_FUNC
PyInit__timeline(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (monotonic_fn == NULL) {
        PyObject *time = PyImport_ImportModule("time");
        if (time == NULL)
            goto error;
        monotonic_fn = PyObject_GetAttrString(time, "monotonic");
        Py_DECREF(time);
        if (monotonic_fn == NULL)
            goto error;
    }
    PyObject *type = PyType_FromSpec(&Timeline_spec);
    if (type == NULL)
        goto error;
    if (PyModule_AddObject(module, "Timeline", type) < 0) {
        Py_DECREF(type);
        goto error;
    }
    return module;
error:
    Py_DECREF(module);
    return NULL;
}
