/*
 * dmalint capture kit: shared core (sequence numbers, line formatter, sinks).
 *
 * MIT License
 *
 * Copyright (c) 2024 dmalint contributors
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this
 * software and associated documentation files (the "Software"), to deal in the Software
 * without restriction, including without limitation the rights to use, copy, modify, merge,
 * publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
 * to whom the Software is furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in all copies or
 * substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 * INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
 * PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
 * FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
 * OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
 * DEALINGS IN THE SOFTWARE.
 *
 * Include after wdm.h (WDM build) or after storport.h with DMALINT_STORPORT defined
 * (dmalint_storport.h does that). Every record is one dmatrace line (kit contract 1).
 */
#ifndef DMALINT_CORE_H
#define DMALINT_CORE_H

#define DMALINT_LINE_MAX 1024

#ifndef DMALINT_DRIVER_NAME
#define DMALINT_DRIVER_NAME "driver.sys"
#endif

#ifndef DMALINT_POOL_TAG
#define DMALINT_POOL_TAG 0x4b6c6d44 /* 'Dmlk' */
#endif

/* Sinks, chosen at compile time: TraceLogging unless another is asked for. */
#if !defined(DMALINT_SINK_TRACELOGGING) && !defined(DMALINT_SINK_DBGPRINT) && \
    !defined(DMALINT_SINK_CALLBACK)
#define DMALINT_SINK_TRACELOGGING 1
#endif

#if defined(DMALINT_STORPORT) && !defined(DMALINT_NO_IRQL)
#define DMALINT_NO_IRQL 1 /* miniports must not call KeGetCurrentIrql */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* In ntddk.h, not wdm.h: declared here (the same prototype) so a WDM build can use it. */
NTKERNELAPI HANDLE NTAPI PsGetCurrentThreadId(VOID);

typedef struct _DMALINT_LINE {
    ULONGLONG Seq;
    unsigned Length;   /* bytes in Text, no NUL counted */
    unsigned Prefix;   /* bytes of the context prefix */
    unsigned Overflow; /* the record did not fit */
    unsigned Comma;    /* next argument needs ", " */
    char Text[DMALINT_LINE_MAX];
} DMALINT_LINE;

/* Test hooks. */
#ifndef DMALINT_NO_IRQL
typedef KIRQL (*DMALINT_GET_IRQL)(void);
extern DMALINT_GET_IRQL DmalintGetIrqlHook; /* defaults to KeGetCurrentIrql */
#endif
#ifdef DMALINT_SINK_CALLBACK
typedef void (*DMALINT_LINE_SINK)(const char *line, unsigned length, ULONGLONG seq);
extern DMALINT_LINE_SINK DmalintLineSink; /* NULL: lines are dropped */
#endif

/* Optional: register the ETW provider early (PASSIVE_LEVEL), unregister at unload. */
void DmalintInitialize(void);
void DmalintShutdown(void);

/* Formatter. */
void DmalintBegin(DMALINT_LINE *L);            /* takes seq=, writes the context prefix */
#ifndef DMALINT_NO_IRQL
void DmalintBeginAt(DMALINT_LINE *L, ULONG irql); /* irql= read before a call that changes it */
#endif
void DmalintEnd(DMALINT_LINE *L);              /* lost record if it overflowed, then sink */
void DmalintPut(DMALINT_LINE *L, const char *s);
void DmalintPutN(DMALINT_LINE *L, const char *s, unsigned n);
void DmalintPutU(DMALINT_LINE *L, ULONGLONG v); /* hex with 0x from 10 up, decimal below */
void DmalintPutPtr(DMALINT_LINE *L, const void *p);
void DmalintPutString(DMALINT_LINE *L, const char *s); /* quoted, " -> ' and \ -> / */
void DmalintOpen(DMALINT_LINE *L, const char *verb, const char *name); /* "verb name(" */
void DmalintClose(DMALINT_LINE *L);                                    /* ")" */
void DmalintArgName(DMALINT_LINE *L, const char *name, int out);        /* ", Name=" / "Name=>" */
void DmalintResult(DMALINT_LINE *L);            /* " -> " */

const char *DmalintStatusName(LONG status);     /* NULL when not symbolic */
void DmalintPutStatus(DMALINT_LINE *L, LONG status);
void DmalintPutBool(DMALINT_LINE *L, int b);
void DmalintPutIrql(DMALINT_LINE *L, ULONG irql);
const char *DmalintPoolTypeName(ULONG type);
const char *DmalintDeviceDescriptionVersionName(ULONG v);
const char *DmalintAllocationActionName(ULONG action);

/* One argument (or the result) of a logged call, as data: a wrapper fills an array of these
 * and hands it to DmalintLogCall, which writes `verb Name(Arg=v, Out=>v) -> result`. */
enum {
    DMALINT_KIND_U = 1,   /* hex with 0x from 10 up, decimal below */
    DMALINT_KIND_PTR,     /* NULL or hex */
    DMALINT_KIND_BOOL,    /* TRUE / FALSE */
    DMALINT_KIND_SYM,     /* Sym if not NULL, else Value as a number */
    DMALINT_KIND_IRQL,    /* PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, else the number */
    DMALINT_KIND_STATUS   /* STATUS_* name, else hex */
};
typedef struct _DMALINT_ARG {
    const char *Name;
    const char *Sym;
    ULONGLONG Value;
    unsigned char Kind;
    unsigned char Out; /* Name=>value */
} DMALINT_ARG;

#define DMALINT_ARG_OF(kind, out, name, sym, value) {(name), (sym), (ULONGLONG)(value), (kind), (out)}
#define DMALINT_U(name, v) DMALINT_ARG_OF(DMALINT_KIND_U, 0, name, NULL, v)
#define DMALINT_OUT_U(name, v) DMALINT_ARG_OF(DMALINT_KIND_U, 1, name, NULL, v)
#define DMALINT_PTR(name, p) DMALINT_ARG_OF(DMALINT_KIND_PTR, 0, name, NULL, (ULONG_PTR)(p))
#define DMALINT_OUT_PTR(name, p) DMALINT_ARG_OF(DMALINT_KIND_PTR, 1, name, NULL, (ULONG_PTR)(p))
#define DMALINT_BOOL(name, b) DMALINT_ARG_OF(DMALINT_KIND_BOOL, 0, name, NULL, (b) ? 1 : 0)
#define DMALINT_SYM(name, sym, v) DMALINT_ARG_OF(DMALINT_KIND_SYM, 0, name, sym, v)
#define DMALINT_IRQL(name, v) DMALINT_ARG_OF(DMALINT_KIND_IRQL, 0, name, NULL, v)
#define DMALINT_OUT_IRQL(name, v) DMALINT_ARG_OF(DMALINT_KIND_IRQL, 1, name, NULL, v)
#define DMALINT_STATUS(v) DMALINT_ARG_OF(DMALINT_KIND_STATUS, 0, NULL, NULL, (ULONG)(v))
#define DMALINT_COUNT(array) ((unsigned)(sizeof(array) / sizeof((array)[0])))

/* `at`: the IRQL to log (read before a call that changes it), or DMALINT_IRQL_NOW.
 * `result`: NULL for a call logged without `->`. */
#define DMALINT_IRQL_NOW 0xffffffffUL
void DmalintLogCall(ULONG at, const char *verb, const char *name, const DMALINT_ARG *args,
                    unsigned count, const DMALINT_ARG *result);
void DmalintPutArgValue(DMALINT_LINE *L, const DMALINT_ARG *a);
void DmalintPutArg(DMALINT_LINE *L, const DMALINT_ARG *a); /* ", Name=value" */
/* The common case: `call Name(args) [-> result]` at the current IRQL. */
#define DMALINT_LOG_CALL(name, args, result)                                                   \
    DmalintLogCall(DMALINT_IRQL_NOW, "call ", (name), (args), DMALINT_COUNT(args), (result))

/* Whole records. */
void DmalintLogLost(ULONG records, const char *reason);
void DmalintLogRoutine(const char *verb, const char *role); /* "callback Role" / "done Role" */
void DmalintLogMem(const char *dir, const void *va, ULONGLONG len);
void DmalintLogCallback(const char *role, unsigned count, const char *const *names,
                        const void *const *values);
void DmalintLogDoneBool(const char *role, int value);
/* `mdl ADDR va=.. offset=.. bytes=.. pfns=[..] [next=..]` for each MDL of a chain. */
void DmalintLogMdlChain(PMDL Mdl);
/* `sgl ADDR [PHYS:LEN, ..]`; a STOR_SCATTER_GATHER_LIST has the same layout. */
void DmalintLogSgl(const SCATTER_GATHER_LIST *Sgl);
/* `leave Name -> status [(Out=>value)]` */
void DmalintLeave(const char *name, const DMALINT_ARG *status, const DMALINT_ARG *out);

/* Driver routines the system runs: one line at the top of the routine and one at each return,
 * under its role name (rules/ddi-signatures.yaml): DMALINT_ROUTINE_ENTER(StartIo, DeviceObject,
 * Irp). DMALINT_PARAMS_<Role> (dmalint_capture.h, dmalint_storport.h) names its parameters;
 * the argument count must match (checked at compile time). */
#define DMALINT_ROUTINE_ENTER(Role, ...)                                                       \
    do {                                                                                       \
        static const char *const dmalint_names_[] = {DMALINT_PARAMS_##Role};                   \
        const void *const dmalint_values_[] = {__VA_ARGS__};                                   \
        _Static_assert(DMALINT_COUNT(dmalint_names_) == DMALINT_COUNT(dmalint_values_),        \
                       "dmalint: " #Role " takes another number of arguments");                \
        DmalintLogCallback(#Role, DMALINT_COUNT(dmalint_names_), dmalint_names_,               \
                           dmalint_values_);                                                   \
    } while (0)
#define DMALINT_ROUTINE_LEAVE(Role) DmalintLogRoutine("done ", #Role)
/* Returns from the routine: `done Role -> TRUE|FALSE`. */
#define DMALINT_ROUTINE_RETURN_BOOLEAN(Role, value) return DmalintReturnBoolean(#Role, (BOOLEAN)(value))
static __inline BOOLEAN DmalintReturnBoolean(const char *role, BOOLEAN value)
{
    DmalintLogDoneBool(role, value);
    return value;
}
/* The driver's own accesses to a DMA buffer (SGL003, POOL006, POOL007 need them). */
#define DMALINT_MEM_READ(va, len) DmalintLogMem("read", (va), (len))
#define DMALINT_MEM_WRITE(va, len) DmalintLogMem("write", (va), (len))

#ifdef __cplusplus
}
#endif

#endif /* DMALINT_CORE_H */
