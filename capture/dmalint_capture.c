/*
 * dmalint capture kit: WDM wrappers: the DMA adapter table, trampolines, pool, MDL, lock and IRQL DDIs.
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
#include <wdm.h>
#define DMALINT_CAPTURE_IMPLEMENTATION 1
#include "dmalint_capture.h"
#define DMALINT_CORE_NO_INCLUDE 1
#include "dmalint_core.c"

/* ------------------------------------------------------------------ IRQL hooks */
static KIRQL DmalintDefaultRaiseIrql(KIRQL NewIrql)
{
    KIRQL old;
    KeRaiseIrql(NewIrql, &old);
    return old;
}
static VOID DmalintDefaultLowerIrql(KIRQL NewIrql) { KeLowerIrql(NewIrql); }
DMALINT_RAISE_IRQL DmalintRaiseIrqlHook = DmalintDefaultRaiseIrql;
DMALINT_LOWER_IRQL DmalintLowerIrqlHook = DmalintDefaultLowerIrql;

/* ------------------------------------------------------------------ wrapper adapter */
/* DMA_OPERATIONS slots after Size, in the order of wdm.h (v1: 0-9, v2: to 14, v3: to 38). */
enum {
    DMALINT_SLOT_PutDmaAdapter, DMALINT_SLOT_AllocateCommonBuffer, DMALINT_SLOT_FreeCommonBuffer,
    DMALINT_SLOT_AllocateAdapterChannel, DMALINT_SLOT_FlushAdapterBuffers,
    DMALINT_SLOT_FreeAdapterChannel, DMALINT_SLOT_FreeMapRegisters, DMALINT_SLOT_MapTransfer,
    DMALINT_SLOT_GetDmaAlignment, DMALINT_SLOT_ReadDmaCounter, DMALINT_SLOT_GetScatterGatherList,
    DMALINT_SLOT_PutScatterGatherList, DMALINT_SLOT_CalculateScatterGatherList,
    DMALINT_SLOT_BuildScatterGatherList, DMALINT_SLOT_BuildMdlFromScatterGatherList,
    DMALINT_SLOT_GetDmaAdapterInfo, DMALINT_SLOT_GetDmaTransferInfo,
    DMALINT_SLOT_InitializeDmaTransferContext, DMALINT_SLOT_AllocateCommonBufferEx,
    DMALINT_SLOT_AllocateAdapterChannelEx, DMALINT_SLOT_ConfigureAdapterChannel,
    DMALINT_SLOT_CancelAdapterChannel, DMALINT_SLOT_MapTransferEx,
    DMALINT_SLOT_GetScatterGatherListEx, DMALINT_SLOT_BuildScatterGatherListEx,
    DMALINT_SLOT_FlushAdapterBuffersEx, DMALINT_SLOT_FreeAdapterObject,
    DMALINT_SLOT_CancelMappedTransfer, DMALINT_SLOT_AllocateDomainCommonBuffer,
    DMALINT_SLOT_FlushDmaBuffer, DMALINT_SLOT_JoinDmaDomain, DMALINT_SLOT_LeaveDmaDomain,
    DMALINT_SLOT_GetDmaDomain, DMALINT_SLOT_AllocateCommonBufferWithBounds,
    DMALINT_SLOT_AllocateCommonBufferVector, DMALINT_SLOT_GetCommonBufferFromVectorByIndex,
    DMALINT_SLOT_FreeCommonBufferFromVector, DMALINT_SLOT_FreeCommonBufferVector,
    DMALINT_SLOT_CreateCommonBufferFromMdl,
    DMALINT_SLOTS_KNOWN
};
/* Forwarders exist for this many slots; a table with more is not wrapped (section 6 of
 * docs/capture.md): a slot the kit cannot forward would hand the HAL the wrapper adapter. */
#define DMALINT_SLOTS_MAX 50

typedef struct _DMALINT_ADAPTER {
    DMA_ADAPTER Public; /* what the driver sees; Public.DmaOperations points at Table */
    PDMA_ADAPTER Real;
    ULONG Slots;        /* slots in the real table */
    ULONG Pad;
    union {
        DMA_OPERATIONS Ops;
        struct {
            ULONG Size;
            PVOID Slot[1];
        } Raw;
    } Table; /* exactly the real table's Size bytes */
} DMALINT_ADAPTER;

#define DMALINT_REAL(a) (((DMALINT_ADAPTER *)(a))->Real)
#define DMALINT_OPS(a) (DMALINT_REAL(a)->DmaOperations)
#define DMALINT_REAL_SLOT(a, n) \
    (((PVOID const *)((const UCHAR *)DMALINT_OPS(a) + FIELD_OFFSET(DMA_OPERATIONS, PutDmaAdapter)))[n])

/* A slot the kit does not log: the same call, with the real adapter. Every DMA operation takes
 * the adapter first and at most 15 integer or pointer arguments (PHYSICAL_ADDRESS by value is
 * one 8-byte integer); on x64 and ARM64 the caller owns the stack, so passing more arguments
 * than the routine reads is harmless. */
#ifndef _WIN64
#error "dmalint capture kit: the DMA adapter wrapper supports 64-bit drivers (x64, ARM64) only"
#endif
typedef ULONG_PTR (NTAPI *DMALINT_ANY_OPERATION)(PDMA_ADAPTER, ULONG_PTR, ULONG_PTR, ULONG_PTR,
                                                 ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR,
                                                 ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR,
                                                 ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR);
#define DMALINT_FORWARDER(n)                                                                  \
    static ULONG_PTR NTAPI DmalintForward##n(PDMA_ADAPTER a, ULONG_PTR p1, ULONG_PTR p2,       \
                                             ULONG_PTR p3, ULONG_PTR p4, ULONG_PTR p5,         \
                                             ULONG_PTR p6, ULONG_PTR p7, ULONG_PTR p8,         \
                                             ULONG_PTR p9, ULONG_PTR p10, ULONG_PTR p11,       \
                                             ULONG_PTR p12, ULONG_PTR p13, ULONG_PTR p14,      \
                                             ULONG_PTR p15)                                    \
    {                                                                                         \
        DMALINT_ANY_OPERATION op = (DMALINT_ANY_OPERATION)DMALINT_REAL_SLOT(a, n);             \
        return op(DMALINT_REAL(a), p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13,     \
                  p14, p15);                                                                  \
    }
#define DMALINT_FORWARDERS10(b)                                                               \
    DMALINT_FORWARDER(b##0) DMALINT_FORWARDER(b##1) DMALINT_FORWARDER(b##2)                   \
    DMALINT_FORWARDER(b##3) DMALINT_FORWARDER(b##4) DMALINT_FORWARDER(b##5)                   \
    DMALINT_FORWARDER(b##6) DMALINT_FORWARDER(b##7) DMALINT_FORWARDER(b##8)                   \
    DMALINT_FORWARDER(b##9)
#define DMALINT_FORWARDER_NAMES10(b)                                                          \
    (PVOID)DmalintForward##b##0, (PVOID)DmalintForward##b##1, (PVOID)DmalintForward##b##2,    \
    (PVOID)DmalintForward##b##3, (PVOID)DmalintForward##b##4, (PVOID)DmalintForward##b##5,    \
    (PVOID)DmalintForward##b##6, (PVOID)DmalintForward##b##7, (PVOID)DmalintForward##b##8,    \
    (PVOID)DmalintForward##b##9
DMALINT_FORWARDERS10() DMALINT_FORWARDERS10(1) DMALINT_FORWARDERS10(2) DMALINT_FORWARDERS10(3)
DMALINT_FORWARDERS10(4)
static PVOID const DmalintForwarders[DMALINT_SLOTS_MAX] = {
    DMALINT_FORWARDER_NAMES10(), DMALINT_FORWARDER_NAMES10(1), DMALINT_FORWARDER_NAMES10(2),
    DMALINT_FORWARDER_NAMES10(3), DMALINT_FORWARDER_NAMES10(4)};

/* v3 routine types (Windows 8 wdm.h), declared here: older headers, mingw's among them, lack them. */
typedef PVOID DMALINT_DMA_COMPLETION_ROUTINE;
typedef NTSTATUS (NTAPI *DMALINT_GET_DMA_ADAPTER_INFO)(PDMA_ADAPTER, PVOID);
typedef NTSTATUS (NTAPI *DMALINT_INITIALIZE_DMA_TRANSFER_CONTEXT)(PDMA_ADAPTER, PVOID);
typedef PVOID (NTAPI *DMALINT_ALLOCATE_COMMON_BUFFER_EX)(PDMA_ADAPTER, PPHYSICAL_ADDRESS, ULONG,
                                                         PPHYSICAL_ADDRESS, BOOLEAN, ULONG);
typedef NTSTATUS (NTAPI *DMALINT_ALLOCATE_ADAPTER_CHANNEL_EX)(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID,
                                                              ULONG, ULONG, PDRIVER_CONTROL,
                                                              PVOID, PVOID *);
typedef BOOLEAN (NTAPI *DMALINT_CANCEL_ADAPTER_CHANNEL)(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID);
typedef NTSTATUS (NTAPI *DMALINT_MAP_TRANSFER_EX)(PDMA_ADAPTER, PMDL, PVOID, ULONGLONG, ULONG,
                                                  PULONG, BOOLEAN, PSCATTER_GATHER_LIST, ULONG,
                                                  DMALINT_DMA_COMPLETION_ROUTINE, PVOID);
typedef NTSTATUS (NTAPI *DMALINT_GET_SCATTER_GATHER_LIST_EX)(
    PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, PMDL, ULONGLONG, ULONG, ULONG, PDRIVER_LIST_CONTROL,
    PVOID, BOOLEAN, DMALINT_DMA_COMPLETION_ROUTINE, PVOID, PSCATTER_GATHER_LIST *);
typedef NTSTATUS (NTAPI *DMALINT_BUILD_SCATTER_GATHER_LIST_EX)(
    PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, PMDL, ULONGLONG, ULONG, ULONG, PDRIVER_LIST_CONTROL,
    PVOID, BOOLEAN, PVOID, ULONG, DMALINT_DMA_COMPLETION_ROUTINE, PVOID, PSCATTER_GATHER_LIST *);
typedef NTSTATUS (NTAPI *DMALINT_FLUSH_ADAPTER_BUFFERS_EX)(PDMA_ADAPTER, PMDL, PVOID, ULONGLONG,
                                                           ULONG, BOOLEAN);
typedef VOID (NTAPI *DMALINT_FREE_ADAPTER_OBJECT)(PDMA_ADAPTER, IO_ALLOCATION_ACTION);
typedef NTSTATUS (NTAPI *DMALINT_CANCEL_MAPPED_TRANSFER)(PDMA_ADAPTER, PVOID);
typedef PVOID (NTAPI *DMALINT_ALLOCATE_COMMON_BUFFER_WITH_BOUNDS)(PDMA_ADAPTER, PPHYSICAL_ADDRESS,
                                                                  PPHYSICAL_ADDRESS, ULONG, ULONG,
                                                                  MEMORY_CACHING_TYPE *, ULONG,
                                                                  PPHYSICAL_ADDRESS);
#define DMALINT_V3(a, type, slot) ((type)DMALINT_REAL_SLOT(a, DMALINT_SLOT_##slot))

static const char *DmalintInterfaceName(LONG t)
{
    switch (t) {
    case 0: return "Internal";
    case 1: return "Isa";
    case 2: return "Eisa";
    case 5: return "PCIBus";
    case 15: return "PNPBus";
    default: return NULL;
    }
}

/* `leave Name -> STATUS_* [(Out=>value)]` */
#define DMALINT_LEAVE(name, st, out)                                                          \
    do {                                                                                      \
        DMALINT_ARG dmalint_status_ = DMALINT_STATUS(st);                                     \
        DmalintLeave((name), &dmalint_status_, (out));                                        \
    } while (0)

/* ------------------------------------------------------------------ trampolines */
/* A routine the system runs for the driver (ExecutionRoutine) runs through one of these, so the
 * kit can log it. A request with a DmaTransferContext (the v3 Ex forms) can be cancelled before
 * its routine runs: such trampolines are kept on a list, by context, for CancelAdapterChannel. */
typedef struct _DMALINT_TRAMPOLINE {
    struct _DMALINT_TRAMPOLINE *Next;
    PVOID Routine;
    PVOID Context;
    PVOID TransferContext; /* NULL: not on the list */
} DMALINT_TRAMPOLINE;

static KSPIN_LOCK DmalintPendingLock;
static DMALINT_TRAMPOLINE *DmalintPending;

/* `records`: what the routine's run would have logged (callback, sgl, done), lost without one. */
static DMALINT_TRAMPOLINE *DmalintNewTrampoline(PVOID Routine, PVOID Context, PVOID TransferContext,
                                                ULONG records)
{
    DMALINT_TRAMPOLINE *t;
    if (!Routine) return NULL;
    t = (DMALINT_TRAMPOLINE *)ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(DMALINT_TRAMPOLINE),
                                                    DMALINT_POOL_TAG);
    if (!t) {
        DmalintLogLost(records, "no memory for a callback trampoline: the routine's run is not logged");
        return NULL;
    }
    t->Next = NULL;
    t->Routine = Routine;
    t->Context = Context;
    t->TransferContext = TransferContext;
    if (TransferContext) {
        KIRQL old = KeAcquireSpinLockRaiseToDpc(&DmalintPendingLock);
        t->Next = DmalintPending;
        DmalintPending = t;
        KeReleaseSpinLock(&DmalintPendingLock, old);
    }
    return t;
}

/* Takes `t` (or, with t NULL, the first trampoline for `TransferContext`) off the list; TRUE
 * if it was there. */
static BOOLEAN DmalintUnlink(DMALINT_TRAMPOLINE *t, PVOID TransferContext, DMALINT_TRAMPOLINE **found)
{
    DMALINT_TRAMPOLINE **p;
    KIRQL old = KeAcquireSpinLockRaiseToDpc(&DmalintPendingLock);
    for (p = &DmalintPending; *p; p = &(*p)->Next) {
        if (t ? *p == t : (*p)->TransferContext == TransferContext) {
            if (found) *found = *p;
            *p = (*p)->Next;
            KeReleaseSpinLock(&DmalintPendingLock, old);
            return TRUE;
        }
    }
    KeReleaseSpinLock(&DmalintPendingLock, old);
    return FALSE;
}

/* The trampoline's routine and context; frees it. */
static PVOID DmalintTakeTrampoline(DMALINT_TRAMPOLINE *t, PVOID *Context)
{
    PVOID routine = t->Routine;
    *Context = t->Context;
    if (t->TransferContext) DmalintUnlink(t, NULL, NULL);
    ExFreePoolWithTag(t, DMALINT_POOL_TAG);
    return routine;
}

/* A request that failed never runs its routine. */
static void DmalintDropTrampoline(DMALINT_TRAMPOLINE *t, NTSTATUS st)
{
    PVOID context;
    if (t && !NT_SUCCESS(st)) (void)DmalintTakeTrampoline(t, &context);
}

static void DmalintLogCallbackOf(const char *role, PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                 const char *third, PVOID value, PVOID Context)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DeviceObject", DeviceObject), DMALINT_PTR("Irp", Irp),
                       DMALINT_PTR(third, value), DMALINT_PTR("Context", Context)};
    DmalintLogCall(DMALINT_IRQL_NOW, "callback ", role, a, DMALINT_COUNT(a), NULL);
}

static VOID NTAPI DmalintListControl(struct _DEVICE_OBJECT *DeviceObject, struct _IRP *Irp,
                                     struct _SCATTER_GATHER_LIST *ScatterGather, PVOID Context)
{
    PVOID context;
    PDRIVER_LIST_CONTROL routine =
        (PDRIVER_LIST_CONTROL)DmalintTakeTrampoline((DMALINT_TRAMPOLINE *)Context, &context);
    DmalintLogCallbackOf("AdapterListControl", DeviceObject, Irp, "ScatterGather", ScatterGather,
                         context);
    DmalintLogSgl(ScatterGather);
    routine(DeviceObject, Irp, ScatterGather, context);
    DmalintLogRoutine("done ", "AdapterListControl");
}

static IO_ALLOCATION_ACTION NTAPI DmalintAdapterControl(struct _DEVICE_OBJECT *DeviceObject,
                                                        struct _IRP *Irp, PVOID MapRegisterBase,
                                                        PVOID Context)
{
    PVOID context;
    PDRIVER_CONTROL routine =
        (PDRIVER_CONTROL)DmalintTakeTrampoline((DMALINT_TRAMPOLINE *)Context, &context);
    IO_ALLOCATION_ACTION action;
    DMALINT_LINE L;
    DmalintLogCallbackOf("AdapterControl", DeviceObject, Irp, "MapRegisterBase", MapRegisterBase,
                         context);
    action = routine(DeviceObject, Irp, MapRegisterBase, context);
    DmalintBegin(&L);
    DmalintPut(&L, "done AdapterControl -> ");
    {
        const char *name = DmalintAllocationActionName((ULONG)action);
        if (name) DmalintPut(&L, name);
        else DmalintPutU(&L, (ULONG)action);
    }
    DmalintEnd(&L);
    return action;
}

#define DMALINT_ROUTINE(t, wrapper, routine) ((t) ? (wrapper) : (routine))
#define DMALINT_CONTEXT(t, context) ((t) ? (PVOID)(t) : (context))

/* ------------------------------------------------------------------ DMA_OPERATIONS v1, v2 */
static VOID NTAPI DmalintPutDmaAdapter(PDMA_ADAPTER DmaAdapter)
{
    PDMA_ADAPTER real = DMALINT_REAL(DmaAdapter);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter)};
    DMALINT_LOG_CALL("PutDmaAdapter", a, NULL);
    real->DmaOperations->PutDmaAdapter(real);
    ExFreePoolWithTag(DmaAdapter, DMALINT_POOL_TAG);
}

static PVOID NTAPI DmalintAllocateCommonBuffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                               PPHYSICAL_ADDRESS LogicalAddress,
                                               BOOLEAN CacheEnabled)
{
    PVOID va = DMALINT_OPS(DmaAdapter)->AllocateCommonBuffer(DMALINT_REAL(DmaAdapter), Length,
                                                             LogicalAddress, CacheEnabled);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_U("Length", Length),
                       DMALINT_OUT_U("LogicalAddress", va ? LogicalAddress->QuadPart : 0),
                       DMALINT_BOOL("CacheEnabled", CacheEnabled)};
    DMALINT_ARG r = DMALINT_PTR(NULL, va);
    DMALINT_LOG_CALL("AllocateCommonBuffer", a, &r);
    return va;
}

static VOID NTAPI DmalintFreeCommonBuffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                          PHYSICAL_ADDRESS LogicalAddress, PVOID VirtualAddress,
                                          BOOLEAN CacheEnabled)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_U("Length", Length),
                       DMALINT_U("LogicalAddress", LogicalAddress.QuadPart),
                       DMALINT_PTR("VirtualAddress", VirtualAddress),
                       DMALINT_BOOL("CacheEnabled", CacheEnabled)};
    DMALINT_LOG_CALL("FreeCommonBuffer", a, NULL);
    DMALINT_OPS(DmaAdapter)->FreeCommonBuffer(DMALINT_REAL(DmaAdapter), Length, LogicalAddress,
                                              VirtualAddress, CacheEnabled);
}

static NTSTATUS NTAPI DmalintAllocateAdapterChannel(PDMA_ADAPTER DmaAdapter,
                                                    PDEVICE_OBJECT DeviceObject,
                                                    ULONG NumberOfMapRegisters,
                                                    PDRIVER_CONTROL ExecutionRoutine, PVOID Context)
{
    NTSTATUS st;
    DMALINT_TRAMPOLINE *t = DmalintNewTrampoline((PVOID)ExecutionRoutine, Context, NULL, 2);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("DeviceObject", DeviceObject),
                       DMALINT_U("NumberOfMapRegisters", NumberOfMapRegisters),
                       DMALINT_PTR("ExecutionRoutine", ExecutionRoutine),
                       DMALINT_PTR("Context", Context)};
    DmalintLogCall(DMALINT_IRQL_NOW, "enter ", "AllocateAdapterChannel", a, DMALINT_COUNT(a), NULL);
    st = DMALINT_OPS(DmaAdapter)->AllocateAdapterChannel(
        DMALINT_REAL(DmaAdapter), DeviceObject, NumberOfMapRegisters,
        DMALINT_ROUTINE(t, DmalintAdapterControl, ExecutionRoutine), DMALINT_CONTEXT(t, Context));
    DmalintDropTrampoline(t, st);
    DMALINT_LEAVE("AllocateAdapterChannel", st, NULL);
    return st;
}

static BOOLEAN NTAPI DmalintFlushAdapterBuffers(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                PVOID MapRegisterBase, PVOID CurrentVa,
                                                ULONG Length, BOOLEAN WriteToDevice)
{
    BOOLEAN r = DMALINT_OPS(DmaAdapter)->FlushAdapterBuffers(
        DMALINT_REAL(DmaAdapter), Mdl, MapRegisterBase, CurrentVa, Length, WriteToDevice);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_PTR("Mdl", Mdl),
                       DMALINT_PTR("MapRegisterBase", MapRegisterBase),
                       DMALINT_PTR("CurrentVa", CurrentVa), DMALINT_U("Length", Length),
                       DMALINT_BOOL("WriteToDevice", WriteToDevice)};
    DMALINT_ARG res = DMALINT_BOOL(NULL, r);
    DMALINT_LOG_CALL("FlushAdapterBuffers", a, &res);
    return r;
}

static VOID NTAPI DmalintFreeAdapterChannel(PDMA_ADAPTER DmaAdapter)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter)};
    DMALINT_LOG_CALL("FreeAdapterChannel", a, NULL);
    DMALINT_OPS(DmaAdapter)->FreeAdapterChannel(DMALINT_REAL(DmaAdapter));
}

static VOID NTAPI DmalintFreeMapRegisters(PDMA_ADAPTER DmaAdapter, PVOID MapRegisterBase,
                                          ULONG NumberOfMapRegisters)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("MapRegisterBase", MapRegisterBase),
                       DMALINT_U("NumberOfMapRegisters", NumberOfMapRegisters)};
    DMALINT_LOG_CALL("FreeMapRegisters", a, NULL);
    DMALINT_OPS(DmaAdapter)->FreeMapRegisters(DMALINT_REAL(DmaAdapter), MapRegisterBase,
                                              NumberOfMapRegisters);
}

static PHYSICAL_ADDRESS NTAPI DmalintMapTransfer(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                 PVOID MapRegisterBase, PVOID CurrentVa,
                                                 PULONG Length, BOOLEAN WriteToDevice)
{
    PHYSICAL_ADDRESS pa;
    DmalintLogMdlChain(Mdl);
    pa = DMALINT_OPS(DmaAdapter)->MapTransfer(DMALINT_REAL(DmaAdapter), Mdl, MapRegisterBase,
                                              CurrentVa, Length, WriteToDevice);
    {
        DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_PTR("Mdl", Mdl),
                           DMALINT_PTR("MapRegisterBase", MapRegisterBase),
                           DMALINT_PTR("CurrentVa", CurrentVa), DMALINT_OUT_U("Length", *Length),
                           DMALINT_BOOL("WriteToDevice", WriteToDevice)};
        DMALINT_ARG r = DMALINT_U(NULL, pa.QuadPart);
        DMALINT_LOG_CALL("MapTransfer", a, &r);
    }
    return pa;
}

static ULONG DmalintLogAdapterQuery(const char *name, PDMA_ADAPTER DmaAdapter, ULONG value)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter)};
    DMALINT_ARG r = DMALINT_U(NULL, value);
    DMALINT_LOG_CALL(name, a, &r);
    return value;
}

static ULONG NTAPI DmalintGetDmaAlignment(PDMA_ADAPTER DmaAdapter)
{
    return DmalintLogAdapterQuery(
        "GetDmaAlignment", DmaAdapter,
        DMALINT_OPS(DmaAdapter)->GetDmaAlignment(DMALINT_REAL(DmaAdapter)));
}

static ULONG NTAPI DmalintReadDmaCounter(PDMA_ADAPTER DmaAdapter)
{
    return DmalintLogAdapterQuery(
        "ReadDmaCounter", DmaAdapter,
        DMALINT_OPS(DmaAdapter)->ReadDmaCounter(DMALINT_REAL(DmaAdapter)));
}

/* Get and Build: `enter`, the routine through a trampoline, `leave`. Get has no buffer. */
static NTSTATUS DmalintListRequest(int build, PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                   PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                   PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                   BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                                   ULONG ScatterGatherLength)
{
    const char *name = build ? "BuildScatterGatherList" : "GetScatterGatherList";
    NTSTATUS st;
    DMALINT_TRAMPOLINE *t = DmalintNewTrampoline((PVOID)ExecutionRoutine, Context, NULL, 3);
    PDRIVER_LIST_CONTROL routine = DMALINT_ROUTINE(t, DmalintListControl, ExecutionRoutine);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("DeviceObject", DeviceObject), DMALINT_PTR("Mdl", Mdl),
                       DMALINT_PTR("CurrentVa", CurrentVa), DMALINT_U("Length", Length),
                       DMALINT_PTR("ExecutionRoutine", ExecutionRoutine),
                       DMALINT_PTR("Context", Context),
                       DMALINT_BOOL("WriteToDevice", WriteToDevice),
                       DMALINT_PTR("ScatterGatherBuffer", ScatterGatherBuffer),
                       DMALINT_U("ScatterGatherLength", ScatterGatherLength)};
    DmalintLogMdlChain(Mdl);
    DmalintLogCall(DMALINT_IRQL_NOW, "enter ", name, a, DMALINT_COUNT(a) - (build ? 0 : 2), NULL);
    st = build ? DMALINT_OPS(DmaAdapter)->BuildScatterGatherList(
                     DMALINT_REAL(DmaAdapter), DeviceObject, Mdl, CurrentVa, Length, routine,
                     DMALINT_CONTEXT(t, Context), WriteToDevice, ScatterGatherBuffer, ScatterGatherLength)
               : DMALINT_OPS(DmaAdapter)->GetScatterGatherList(
                     DMALINT_REAL(DmaAdapter), DeviceObject, Mdl, CurrentVa, Length, routine,
                     DMALINT_CONTEXT(t, Context), WriteToDevice);
    DmalintDropTrampoline(t, st);
    DMALINT_LEAVE(name, st, NULL);
    return st;
}

static NTSTATUS NTAPI DmalintGetScatterGatherList(PDMA_ADAPTER DmaAdapter,
                                                  PDEVICE_OBJECT DeviceObject, PMDL Mdl,
                                                  PVOID CurrentVa, ULONG Length,
                                                  PDRIVER_LIST_CONTROL ExecutionRoutine,
                                                  PVOID Context, BOOLEAN WriteToDevice)
{
    return DmalintListRequest(0, DmaAdapter, DeviceObject, Mdl, CurrentVa, Length, ExecutionRoutine,
                              Context, WriteToDevice, NULL, 0);
}

static VOID NTAPI DmalintPutScatterGatherList(PDMA_ADAPTER DmaAdapter,
                                              PSCATTER_GATHER_LIST ScatterGather,
                                              BOOLEAN WriteToDevice)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("ScatterGather", ScatterGather),
                       DMALINT_BOOL("WriteToDevice", WriteToDevice)};
    DMALINT_LOG_CALL("PutScatterGatherList", a, NULL);
    DMALINT_OPS(DmaAdapter)->PutScatterGatherList(DMALINT_REAL(DmaAdapter), ScatterGather,
                                                  WriteToDevice);
}

static NTSTATUS NTAPI DmalintCalculateScatterGatherList(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                        PVOID CurrentVa, ULONG Length,
                                                        PULONG ScatterGatherListSize,
                                                        PULONG pNumberOfMapRegisters)
{
    NTSTATUS st = DMALINT_OPS(DmaAdapter)->CalculateScatterGatherList(
        DMALINT_REAL(DmaAdapter), Mdl, CurrentVa, Length, ScatterGatherListSize,
        pNumberOfMapRegisters);
    DMALINT_ARG a[] = {
        DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_PTR("Mdl", Mdl),
        DMALINT_PTR("CurrentVa", CurrentVa), DMALINT_U("Length", Length),
        DMALINT_OUT_U("ScatterGatherListSize", NT_SUCCESS(st) ? *ScatterGatherListSize : 0),
        pNumberOfMapRegisters
            ? (DMALINT_ARG)DMALINT_OUT_U("NumberOfMapRegisters",
                                         NT_SUCCESS(st) ? *pNumberOfMapRegisters : 0)
            : (DMALINT_ARG)DMALINT_PTR("NumberOfMapRegisters", NULL)};
    DMALINT_ARG r = DMALINT_STATUS(st);
    DMALINT_LOG_CALL("CalculateScatterGatherList", a, &r);
    return st;
}

static NTSTATUS NTAPI DmalintBuildScatterGatherList(PDMA_ADAPTER DmaAdapter,
                                                    PDEVICE_OBJECT DeviceObject, PMDL Mdl,
                                                    PVOID CurrentVa, ULONG Length,
                                                    PDRIVER_LIST_CONTROL ExecutionRoutine,
                                                    PVOID Context, BOOLEAN WriteToDevice,
                                                    PVOID ScatterGatherBuffer,
                                                    ULONG ScatterGatherLength)
{
    return DmalintListRequest(1, DmaAdapter, DeviceObject, Mdl, CurrentVa, Length, ExecutionRoutine,
                              Context, WriteToDevice, ScatterGatherBuffer, ScatterGatherLength);
}

static NTSTATUS NTAPI DmalintBuildMdlFromScatterGatherList(PDMA_ADAPTER DmaAdapter,
                                                           PSCATTER_GATHER_LIST ScatterGather,
                                                           PMDL OriginalMdl, PMDL *TargetMdl)
{
    NTSTATUS st = DMALINT_OPS(DmaAdapter)->BuildMdlFromScatterGatherList(
        DMALINT_REAL(DmaAdapter), ScatterGather, OriginalMdl, TargetMdl);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("ScatterGather", ScatterGather),
                       DMALINT_PTR("OriginalMdl", OriginalMdl),
                       DMALINT_OUT_PTR("TargetMdl", NT_SUCCESS(st) ? *TargetMdl : NULL)};
    DMALINT_ARG r = DMALINT_STATUS(st);
    DMALINT_LOG_CALL("BuildMdlFromScatterGatherList", a, &r);
    return st;
}

/* ------------------------------------------------------------------ DMA_OPERATIONS v3 */
static NTSTATUS DmalintLogContextCall(const char *name, PDMA_ADAPTER DmaAdapter, const char *arg,
                                      PVOID value, NTSTATUS st)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_PTR(arg, value)};
    DMALINT_ARG r = DMALINT_STATUS(st);
    DMALINT_LOG_CALL(name, a, &r);
    return st;
}

static NTSTATUS NTAPI DmalintGetDmaAdapterInfo(PDMA_ADAPTER DmaAdapter, PVOID AdapterInfo)
{
    return DmalintLogContextCall(
        "GetDmaAdapterInfo", DmaAdapter, "AdapterInfo", AdapterInfo,
        DMALINT_V3(DmaAdapter, DMALINT_GET_DMA_ADAPTER_INFO, GetDmaAdapterInfo)(
            DMALINT_REAL(DmaAdapter), AdapterInfo));
}

static NTSTATUS NTAPI DmalintInitializeDmaTransferContext(PDMA_ADAPTER DmaAdapter,
                                                          PVOID DmaTransferContext)
{
    return DmalintLogContextCall(
        "InitializeDmaTransferContext", DmaAdapter, "DmaTransferContext", DmaTransferContext,
        DMALINT_V3(DmaAdapter, DMALINT_INITIALIZE_DMA_TRANSFER_CONTEXT,
                   InitializeDmaTransferContext)(DMALINT_REAL(DmaAdapter), DmaTransferContext));
}

static NTSTATUS NTAPI DmalintCancelMappedTransfer(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext)
{
    return DmalintLogContextCall(
        "CancelMappedTransfer", DmaAdapter, "DmaTransferContext", DmaTransferContext,
        DMALINT_V3(DmaAdapter, DMALINT_CANCEL_MAPPED_TRANSFER, CancelMappedTransfer)(
            DMALINT_REAL(DmaAdapter), DmaTransferContext));
}

static DMALINT_ARG DmalintAddressArg(const char *name, PPHYSICAL_ADDRESS p)
{
    DMALINT_ARG a = DMALINT_U(name, p ? p->QuadPart : 0);
    if (!p) a.Kind = DMALINT_KIND_PTR;
    return a;
}

static PVOID NTAPI DmalintAllocateCommonBufferEx(PDMA_ADAPTER DmaAdapter,
                                                 PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                                 PPHYSICAL_ADDRESS LogicalAddress,
                                                 BOOLEAN CacheEnabled, ULONG PreferredNode)
{
    PVOID va = DMALINT_V3(DmaAdapter, DMALINT_ALLOCATE_COMMON_BUFFER_EX, AllocateCommonBufferEx)(
        DMALINT_REAL(DmaAdapter), MaximumAddress, Length, LogicalAddress, CacheEnabled,
        PreferredNode);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DmalintAddressArg("MaximumAddress", MaximumAddress),
                       DMALINT_U("Length", Length),
                       DMALINT_OUT_U("LogicalAddress", va ? LogicalAddress->QuadPart : 0),
                       DMALINT_BOOL("CacheEnabled", CacheEnabled),
                       DMALINT_U("PreferredNode", PreferredNode)};
    DMALINT_ARG r = DMALINT_PTR(NULL, va);
    DMALINT_LOG_CALL("AllocateCommonBufferEx", a, &r);
    return va;
}

static PVOID NTAPI DmalintAllocateCommonBufferWithBounds(PDMA_ADAPTER DmaAdapter,
                                                         PPHYSICAL_ADDRESS MinimumAddress,
                                                         PPHYSICAL_ADDRESS MaximumAddress,
                                                         ULONG Length, ULONG Flags,
                                                         MEMORY_CACHING_TYPE *CacheType,
                                                         ULONG PreferredNode,
                                                         PPHYSICAL_ADDRESS LogicalAddress)
{
    static const char *const types[] = {"MmNonCached", "MmCached", "MmWriteCombined"};
    PVOID va = DMALINT_V3(DmaAdapter, DMALINT_ALLOCATE_COMMON_BUFFER_WITH_BOUNDS,
                          AllocateCommonBufferWithBounds)(DMALINT_REAL(DmaAdapter), MinimumAddress,
                                                          MaximumAddress, Length, Flags, CacheType,
                                                          PreferredNode, LogicalAddress);
    ULONG type = CacheType ? (ULONG)*CacheType : 0;
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DmalintAddressArg("MinimumAddress", MinimumAddress),
                       DmalintAddressArg("MaximumAddress", MaximumAddress),
                       DMALINT_U("Length", Length), DMALINT_U("Flags", Flags),
                       CacheType ? (DMALINT_ARG)DMALINT_SYM("CacheType", type < 3 ? types[type] : NULL, type)
                                 : (DMALINT_ARG)DMALINT_PTR("CacheType", NULL),
                       DMALINT_U("PreferredNode", PreferredNode),
                       DMALINT_OUT_U("LogicalAddress", va ? LogicalAddress->QuadPart : 0)};
    DMALINT_ARG r = DMALINT_PTR(NULL, va);
    DMALINT_LOG_CALL("AllocateCommonBufferWithBounds", a, &r);
    return va;
}

static NTSTATUS NTAPI DmalintAllocateAdapterChannelEx(PDMA_ADAPTER DmaAdapter,
                                                      PDEVICE_OBJECT DeviceObject,
                                                      PVOID DmaTransferContext,
                                                      ULONG NumberOfMapRegisters, ULONG Flags,
                                                      PDRIVER_CONTROL ExecutionRoutine,
                                                      PVOID ExecutionContext,
                                                      PVOID *MapRegisterBase)
{
    NTSTATUS st;
    DMALINT_TRAMPOLINE *t =
        DmalintNewTrampoline((PVOID)ExecutionRoutine, ExecutionContext, DmaTransferContext, 2);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("DeviceObject", DeviceObject),
                       DMALINT_PTR("DmaTransferContext", DmaTransferContext),
                       DMALINT_U("NumberOfMapRegisters", NumberOfMapRegisters),
                       DMALINT_U("Flags", Flags),
                       DMALINT_PTR("ExecutionRoutine", ExecutionRoutine),
                       DMALINT_PTR("ExecutionContext", ExecutionContext),
                       DMALINT_PTR("MapRegisterBase", MapRegisterBase)};
    DmalintLogCall(DMALINT_IRQL_NOW, "enter ", "AllocateAdapterChannelEx", a, DMALINT_COUNT(a), NULL);
    st = DMALINT_V3(DmaAdapter, DMALINT_ALLOCATE_ADAPTER_CHANNEL_EX, AllocateAdapterChannelEx)(
        DMALINT_REAL(DmaAdapter), DeviceObject, DmaTransferContext, NumberOfMapRegisters, Flags,
        DMALINT_ROUTINE(t, DmalintAdapterControl, ExecutionRoutine),
        DMALINT_CONTEXT(t, ExecutionContext), MapRegisterBase);
    DmalintDropTrampoline(t, st);
    {
        DMALINT_ARG out = DMALINT_OUT_PTR("MapRegisterBase",
                                          NT_SUCCESS(st) && MapRegisterBase ? *MapRegisterBase : NULL);
        DMALINT_LEAVE("AllocateAdapterChannelEx", st, !ExecutionRoutine ? &out : NULL);
    }
    return st;
}

static BOOLEAN NTAPI DmalintCancelAdapterChannel(PDMA_ADAPTER DmaAdapter,
                                                 PDEVICE_OBJECT DeviceObject,
                                                 PVOID DmaTransferContext)
{
    BOOLEAN cancelled = DMALINT_V3(DmaAdapter, DMALINT_CANCEL_ADAPTER_CHANNEL, CancelAdapterChannel)(
        DMALINT_REAL(DmaAdapter), DeviceObject, DmaTransferContext);
    DMALINT_TRAMPOLINE *t = NULL;
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("DeviceObject", DeviceObject),
                       DMALINT_PTR("DmaTransferContext", DmaTransferContext)};
    DMALINT_ARG r = DMALINT_BOOL(NULL, cancelled);
    /* A cancelled request never runs its routine: its trampoline is freed here. */
    if (cancelled && DmalintUnlink(NULL, DmaTransferContext, &t)) ExFreePoolWithTag(t, DMALINT_POOL_TAG);
    DMALINT_LOG_CALL("CancelAdapterChannel", a, &r);
    return cancelled;
}

static NTSTATUS NTAPI DmalintMapTransferEx(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                           ULONGLONG Offset, ULONG DeviceOffset, PULONG Length,
                                           BOOLEAN WriteToDevice,
                                           PSCATTER_GATHER_LIST ScatterGatherBuffer,
                                           ULONG ScatterGatherBufferLength,
                                           DMALINT_DMA_COMPLETION_ROUTINE DmaCompletionRoutine,
                                           PVOID CompletionContext)
{
    NTSTATUS st;
    DmalintLogMdlChain(Mdl);
    st = DMALINT_V3(DmaAdapter, DMALINT_MAP_TRANSFER_EX, MapTransferEx)(
        DMALINT_REAL(DmaAdapter), Mdl, MapRegisterBase, Offset, DeviceOffset, Length,
        WriteToDevice, ScatterGatherBuffer, ScatterGatherBufferLength, DmaCompletionRoutine,
        CompletionContext);
    {
        DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_PTR("Mdl", Mdl),
                           DMALINT_PTR("MapRegisterBase", MapRegisterBase),
                           DMALINT_U("Offset", Offset), DMALINT_U("DeviceOffset", DeviceOffset),
                           DMALINT_OUT_U("Length", *Length),
                           DMALINT_BOOL("WriteToDevice", WriteToDevice),
                           DMALINT_PTR("ScatterGatherBuffer", ScatterGatherBuffer),
                           DMALINT_U("ScatterGatherBufferLength", ScatterGatherBufferLength),
                           DMALINT_PTR("DmaCompletionRoutine", DmaCompletionRoutine),
                           DMALINT_PTR("CompletionContext", CompletionContext)};
        DMALINT_ARG r = DMALINT_STATUS(st);
        DMALINT_LOG_CALL("MapTransferEx", a, &r);
    }
    if (NT_SUCCESS(st)) DmalintLogSgl(ScatterGatherBuffer);
    return st;
}

/* GetScatterGatherListEx and BuildScatterGatherListEx: the list comes to the routine, or (no
 * routine) back in ScatterGatherList. Get has no buffer. */
static NTSTATUS DmalintListRequestEx(int build, PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                     PVOID DmaTransferContext, PMDL Mdl, ULONGLONG Offset,
                                     ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
                                     PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                                     ULONG ScatterGatherLength,
                                     DMALINT_DMA_COMPLETION_ROUTINE DmaCompletionRoutine,
                                     PVOID CompletionContext, PSCATTER_GATHER_LIST *ScatterGatherList)
{
    const char *name = build ? "BuildScatterGatherListEx" : "GetScatterGatherListEx";
    NTSTATUS st;
    DMALINT_TRAMPOLINE *t = DmalintNewTrampoline((PVOID)ExecutionRoutine, Context, DmaTransferContext, 3);
    PDRIVER_LIST_CONTROL routine = DMALINT_ROUTINE(t, DmalintListControl, ExecutionRoutine);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_PTR("DeviceObject", DeviceObject),
                       DMALINT_PTR("DmaTransferContext", DmaTransferContext),
                       DMALINT_PTR("Mdl", Mdl), DMALINT_U("Offset", Offset),
                       DMALINT_U("Length", Length), DMALINT_U("Flags", Flags),
                       DMALINT_PTR("ExecutionRoutine", ExecutionRoutine),
                       DMALINT_PTR("Context", Context),
                       DMALINT_BOOL("WriteToDevice", WriteToDevice),
                       DMALINT_PTR("ScatterGatherBuffer", ScatterGatherBuffer),
                       DMALINT_U("ScatterGatherLength", ScatterGatherLength),
                       DMALINT_PTR("DmaCompletionRoutine", DmaCompletionRoutine),
                       DMALINT_PTR("CompletionContext", CompletionContext),
                       DMALINT_PTR("ScatterGatherList", ScatterGatherList)};
    PSCATTER_GATHER_LIST list;
    DMALINT_ARG out;
    if (!build) RtlMoveMemory(&a[10], &a[12], 3 * sizeof(a[0])); /* no ScatterGatherBuffer, -Length */
    DmalintLogMdlChain(Mdl);
    DmalintLogCall(DMALINT_IRQL_NOW, "enter ", name, a, DMALINT_COUNT(a) - (build ? 0 : 2), NULL);
    st = build ? DMALINT_V3(DmaAdapter, DMALINT_BUILD_SCATTER_GATHER_LIST_EX, BuildScatterGatherListEx)(
                     DMALINT_REAL(DmaAdapter), DeviceObject, DmaTransferContext, Mdl, Offset, Length,
                     Flags, routine, DMALINT_CONTEXT(t, Context), WriteToDevice, ScatterGatherBuffer,
                     ScatterGatherLength, DmaCompletionRoutine, CompletionContext, ScatterGatherList)
               : DMALINT_V3(DmaAdapter, DMALINT_GET_SCATTER_GATHER_LIST_EX, GetScatterGatherListEx)(
                     DMALINT_REAL(DmaAdapter), DeviceObject, DmaTransferContext, Mdl, Offset, Length,
                     Flags, routine, DMALINT_CONTEXT(t, Context), WriteToDevice, DmaCompletionRoutine,
                     CompletionContext, ScatterGatherList);
    DmalintDropTrampoline(t, st);
    list = NT_SUCCESS(st) && ScatterGatherList ? *ScatterGatherList : NULL;
    out = (DMALINT_ARG)DMALINT_OUT_PTR("ScatterGatherList", list);
    if (!ExecutionRoutine) DmalintLogSgl(list);
    DMALINT_LEAVE(name, st, !ExecutionRoutine ? &out : NULL);
    return st;
}

static NTSTATUS NTAPI DmalintGetScatterGatherListEx(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, DMALINT_DMA_COMPLETION_ROUTINE DmaCompletionRoutine,
    PVOID CompletionContext, PSCATTER_GATHER_LIST *ScatterGatherList)
{
    return DmalintListRequestEx(0, DmaAdapter, DeviceObject, DmaTransferContext, Mdl, Offset, Length,
                                Flags, ExecutionRoutine, Context, WriteToDevice, NULL, 0,
                                DmaCompletionRoutine, CompletionContext, ScatterGatherList);
}

static NTSTATUS NTAPI DmalintBuildScatterGatherListEx(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer, ULONG ScatterGatherLength,
    DMALINT_DMA_COMPLETION_ROUTINE DmaCompletionRoutine, PVOID CompletionContext,
    PSCATTER_GATHER_LIST *ScatterGatherList)
{
    return DmalintListRequestEx(1, DmaAdapter, DeviceObject, DmaTransferContext, Mdl, Offset, Length,
                                Flags, ExecutionRoutine, Context, WriteToDevice, ScatterGatherBuffer,
                                ScatterGatherLength, DmaCompletionRoutine, CompletionContext,
                                ScatterGatherList);
}

static NTSTATUS NTAPI DmalintFlushAdapterBuffersEx(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                   PVOID MapRegisterBase, ULONGLONG Offset,
                                                   ULONG Length, BOOLEAN WriteToDevice)
{
    NTSTATUS st = DMALINT_V3(DmaAdapter, DMALINT_FLUSH_ADAPTER_BUFFERS_EX, FlushAdapterBuffersEx)(
        DMALINT_REAL(DmaAdapter), Mdl, MapRegisterBase, Offset, Length, WriteToDevice);
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter), DMALINT_PTR("Mdl", Mdl),
                       DMALINT_PTR("MapRegisterBase", MapRegisterBase),
                       DMALINT_U("Offset", Offset), DMALINT_U("Length", Length),
                       DMALINT_BOOL("WriteToDevice", WriteToDevice)};
    DMALINT_ARG r = DMALINT_STATUS(st);
    DMALINT_LOG_CALL("FlushAdapterBuffersEx", a, &r);
    return st;
}

static VOID NTAPI DmalintFreeAdapterObject(PDMA_ADAPTER DmaAdapter, IO_ALLOCATION_ACTION AllocationAction)
{
    DMALINT_ARG a[] = {DMALINT_PTR("DmaAdapter", DmaAdapter),
                       DMALINT_SYM("AllocationAction", DmalintAllocationActionName((ULONG)AllocationAction),
                                   (ULONG)AllocationAction)};
    DMALINT_LOG_CALL("FreeAdapterObject", a, NULL);
    DMALINT_V3(DmaAdapter, DMALINT_FREE_ADAPTER_OBJECT, FreeAdapterObject)(DMALINT_REAL(DmaAdapter),
                                                                           AllocationAction);
}

/* ------------------------------------------------------------------ IoGetDmaAdapter */
/* The slots the kit logs; every other slot the real table fills gets a forwarder. */
#define DMALINT_LOGGED(member) {DMALINT_SLOT_##member, (PVOID)Dmalint##member}
static const struct {
    ULONG Slot;
    PVOID Wrapper;
} DmalintLogged[] = {
    DMALINT_LOGGED(PutDmaAdapter), DMALINT_LOGGED(AllocateCommonBuffer),
    DMALINT_LOGGED(FreeCommonBuffer), DMALINT_LOGGED(AllocateAdapterChannel),
    DMALINT_LOGGED(FlushAdapterBuffers), DMALINT_LOGGED(FreeAdapterChannel),
    DMALINT_LOGGED(FreeMapRegisters), DMALINT_LOGGED(MapTransfer),
    DMALINT_LOGGED(GetDmaAlignment), DMALINT_LOGGED(ReadDmaCounter),
    DMALINT_LOGGED(GetScatterGatherList), DMALINT_LOGGED(PutScatterGatherList),
    DMALINT_LOGGED(CalculateScatterGatherList), DMALINT_LOGGED(BuildScatterGatherList),
    DMALINT_LOGGED(BuildMdlFromScatterGatherList), DMALINT_LOGGED(GetDmaAdapterInfo),
    DMALINT_LOGGED(InitializeDmaTransferContext), DMALINT_LOGGED(AllocateCommonBufferEx),
    DMALINT_LOGGED(AllocateAdapterChannelEx), DMALINT_LOGGED(CancelAdapterChannel),
    DMALINT_LOGGED(MapTransferEx), DMALINT_LOGGED(GetScatterGatherListEx),
    DMALINT_LOGGED(BuildScatterGatherListEx), DMALINT_LOGGED(FlushAdapterBuffersEx),
    DMALINT_LOGGED(FreeAdapterObject), DMALINT_LOGGED(CancelMappedTransfer),
    DMALINT_LOGGED(AllocateCommonBufferWithBounds),
};
#undef DMALINT_LOGGED

static DMALINT_ADAPTER *DmalintWrapAdapter(PDMA_ADAPTER real)
{
    ULONG size = real->DmaOperations->Size;
    ULONG head = FIELD_OFFSET(DMA_OPERATIONS, PutDmaAdapter);
    ULONG slots = size > head ? (size - head) / sizeof(PVOID) : 0;
    DMALINT_ADAPTER *w;
    ULONG i;
    if (slots > DMALINT_SLOTS_MAX) {
        DmalintLogLost(1, "DMA_OPERATIONS larger than the kit knows: the adapter is not wrapped");
        return NULL;
    }
    w = (DMALINT_ADAPTER *)ExAllocatePoolWithTag(
        NonPagedPoolNx, FIELD_OFFSET(DMALINT_ADAPTER, Table) + (size > sizeof(DMA_OPERATIONS) ? size : sizeof(DMA_OPERATIONS)),
        DMALINT_POOL_TAG);
    if (!w) {
        DmalintLogLost(1, "no memory for the wrapper adapter: its DMA operations are not logged");
        return NULL;
    }
    RtlCopyMemory(&w->Table, real->DmaOperations, size); /* exactly Size bytes */
    w->Public.Version = real->Version;
    w->Public.Size = real->Size;
    w->Public.DmaOperations = &w->Table.Ops;
    w->Real = real;
    w->Slots = slots;
    for (i = 0; i < slots; i++)
        if (w->Table.Raw.Slot[i]) w->Table.Raw.Slot[i] = DmalintForwarders[i];
    for (i = 0; i < DMALINT_COUNT(DmalintLogged); i++)
        if (DmalintLogged[i].Slot < slots && w->Table.Raw.Slot[DmalintLogged[i].Slot])
            w->Table.Raw.Slot[DmalintLogged[i].Slot] = DmalintLogged[i].Wrapper;
    return w;
}

PDMA_ADAPTER DmalintIoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject,
                                    struct _DEVICE_DESCRIPTION *DeviceDescription,
                                    PULONG NumberOfMapRegisters)
{
    PDMA_ADAPTER real = IoGetDmaAdapter(PhysicalDeviceObject, DeviceDescription,
                                        NumberOfMapRegisters);
    DMALINT_ADAPTER *w = real ? DmalintWrapAdapter(real) : NULL;
    DMALINT_ARG a[] = {DMALINT_PTR("PhysicalDeviceObject", PhysicalDeviceObject),
                       DMALINT_PTR("DeviceDescription", NULL),
                       DMALINT_OUT_U("NumberOfMapRegisters",
                                     real && NumberOfMapRegisters ? *NumberOfMapRegisters : 0)};
    DMALINT_ARG r = DMALINT_PTR(NULL, w ? (PVOID)&w->Public : (PVOID)real);
    DMALINT_LINE L;
    unsigned i;
    DmalintBegin(&L);
    DmalintOpen(&L, "call ", "IoGetDmaAdapter");
    DmalintPutArg(&L, &a[0]);
    if (DeviceDescription) { /* DeviceDescription={Version=.., Master=.., ...} */
        const DEVICE_DESCRIPTION *d = DeviceDescription;
        DMALINT_ARG f[] = {
            DMALINT_SYM("Version", DmalintDeviceDescriptionVersionName(d->Version), d->Version),
            DMALINT_BOOL("Master", d->Master), DMALINT_BOOL("ScatterGather", d->ScatterGather),
            DMALINT_BOOL("Dma32BitAddresses", d->Dma32BitAddresses),
            DMALINT_BOOL("Dma64BitAddresses", d->Dma64BitAddresses),
            DMALINT_SYM("InterfaceType", DmalintInterfaceName(d->InterfaceType), (ULONG)d->InterfaceType),
            DMALINT_U("MaximumLength", d->MaximumLength)};
        DmalintArgName(&L, "DeviceDescription", 0);
        DmalintPut(&L, "{");
        L.Comma = 0;
        for (i = 0; i < DMALINT_COUNT(f); i++) DmalintPutArg(&L, &f[i]);
        DmalintPut(&L, "}");
        L.Comma = 1;
    } else {
        DmalintPutArg(&L, &a[1]);
    }
    DmalintPutArg(&L, &a[2]);
    DmalintClose(&L);
    DmalintResult(&L);
    DmalintPutArgValue(&L, &r);
    DmalintEnd(&L);
    return w ? &w->Public : real;
}

/* ------------------------------------------------------------------ pool */
static PVOID DmalintLogAlloc(const char *name, DMALINT_ARG first, SIZE_T bytes, ULONG tag, PVOID p)
{
    DMALINT_ARG a[] = {first, DMALINT_U("NumberOfBytes", bytes), DMALINT_U("Tag", tag)};
    DMALINT_ARG r = DMALINT_PTR(NULL, p);
    DMALINT_LOG_CALL(name, a, &r);
    return p;
}

PVOID DmalintExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return DmalintLogAlloc("ExAllocatePoolWithTag",
                           (DMALINT_ARG)DMALINT_SYM("PoolType", DmalintPoolTypeName((ULONG)PoolType), (ULONG)PoolType),
                           NumberOfBytes, Tag, ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag));
}

static const char *DmalintPoolFlagsName(POOL_FLAGS f)
{
    switch (f) {
    case POOL_FLAG_NON_PAGED: return "POOL_FLAG_NON_PAGED";
    case POOL_FLAG_NON_PAGED_EXECUTE: return "POOL_FLAG_NON_PAGED_EXECUTE";
    case POOL_FLAG_PAGED: return "POOL_FLAG_PAGED";
    default: return NULL;
    }
}

PVOID DmalintExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)
{
    return DmalintLogAlloc("ExAllocatePool2",
                           (DMALINT_ARG)DMALINT_SYM("Flags", DmalintPoolFlagsName(Flags), Flags),
                           NumberOfBytes, Tag, ExAllocatePool2(Flags, NumberOfBytes, Tag));
}

VOID DmalintExFreePoolWithTag(PVOID P, ULONG Tag)
{
    DMALINT_ARG a[] = {DMALINT_PTR("P", P), DMALINT_U("Tag", Tag)};
    DMALINT_LOG_CALL("ExFreePoolWithTag", a, NULL);
    ExFreePoolWithTag(P, Tag);
}

/* `call Name(Arg=pointer)`, logged before a release or after a call that returns nothing. */
static void DmalintLogOneArg(const char *name, const char *arg, const void *value)
{
    DMALINT_ARG a[] = {DMALINT_PTR(arg, value)};
    DMALINT_LOG_CALL(name, a, NULL);
}

VOID DmalintExFreePool(PVOID P)
{
    DmalintLogOneArg("ExFreePool", "P", P);
    ExFreePool(P);
}

/* ------------------------------------------------------------------ MDLs and memory */
PMDL DmalintIoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                          BOOLEAN ChargeQuota, PIRP Irp)
{
    PMDL m = IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp);
    DMALINT_ARG a[] = {DMALINT_PTR("VirtualAddress", VirtualAddress), DMALINT_U("Length", Length),
                       DMALINT_BOOL("SecondaryBuffer", SecondaryBuffer),
                       DMALINT_BOOL("ChargeQuota", ChargeQuota), DMALINT_PTR("Irp", Irp)};
    DMALINT_ARG r = DMALINT_PTR(NULL, m);
    DMALINT_LOG_CALL("IoAllocateMdl", a, &r);
    return m;
}

VOID DmalintIoFreeMdl(PMDL Mdl)
{
    DmalintLogOneArg("IoFreeMdl", "Mdl", Mdl);
    IoFreeMdl(Mdl);
}

VOID DmalintMmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList)
{
    MmBuildMdlForNonPagedPool(MemoryDescriptorList);
    DmalintLogOneArg("MmBuildMdlForNonPagedPool", "MemoryDescriptorList", MemoryDescriptorList);
}

static void DmalintLogProbe(PMDL Mdl, KPROCESSOR_MODE AccessMode, LOCK_OPERATION Operation,
                            const DMALINT_ARG *failed)
{
    static const char *const ops[] = {"IoReadAccess", "IoWriteAccess", "IoModifyAccess"};
    DMALINT_ARG a[] = {DMALINT_PTR("MemoryDescriptorList", Mdl),
                       DMALINT_SYM("AccessMode", AccessMode == KernelMode ? "KernelMode" : "UserMode", AccessMode),
                       DMALINT_SYM("Operation", (ULONG)Operation < 3 ? ops[Operation] : NULL, Operation)};
    DMALINT_LOG_CALL("MmProbeAndLockPages", a, failed);
}

VOID DmalintMmProbeAndLockPages(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode,
                                LOCK_OPERATION Operation)
{
#ifdef _MSC_VER
    /* A probe that raises is logged as failed; the exception goes on to the driver's handler. */
    static const DMALINT_ARG raised = DMALINT_STATUS(STATUS_ACCESS_VIOLATION);
    __try {
        MmProbeAndLockPages(MemoryDescriptorList, AccessMode, Operation);
    } __except (DmalintLogProbe(MemoryDescriptorList, AccessMode, Operation, &raised),
                EXCEPTION_CONTINUE_SEARCH) {
    }
#else
    /* gcc has no SEH: a probe that raises is not logged. */
    MmProbeAndLockPages(MemoryDescriptorList, AccessMode, Operation);
#endif
    DmalintLogProbe(MemoryDescriptorList, AccessMode, Operation, NULL);
}

VOID DmalintMmUnlockPages(PMDL MemoryDescriptorList)
{
    DmalintLogOneArg("MmUnlockPages", "MemoryDescriptorList", MemoryDescriptorList);
    MmUnlockPages(MemoryDescriptorList);
}

PVOID DmalintMmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
    PVOID va = MmGetSystemAddressForMdlSafe(Mdl, (MM_PAGE_PRIORITY)Priority);
    const char *p = NULL;
    switch (Priority & 0xffff) {
    case LowPagePriority: p = "LowPagePriority"; break;
    case NormalPagePriority: p = "NormalPagePriority"; break;
    case HighPagePriority: p = "HighPagePriority"; break;
    }
    {
        DMALINT_ARG a[] = {DMALINT_PTR("Mdl", Mdl),
                           DMALINT_SYM("Priority", (Priority >> 16) ? NULL : p, Priority)};
        DMALINT_ARG r = DMALINT_PTR(NULL, va);
        DMALINT_LOG_CALL("MmGetSystemAddressForMdlSafe", a, &r);
    }
    return va;
}

PVOID DmalintMmAllocateContiguousMemorySpecifyCache(SIZE_T NumberOfBytes,
                                                    PHYSICAL_ADDRESS LowestAcceptableAddress,
                                                    PHYSICAL_ADDRESS HighestAcceptableAddress,
                                                    PHYSICAL_ADDRESS BoundaryAddressMultiple,
                                                    MEMORY_CACHING_TYPE CacheType)
{
    static const char *const types[] = {"MmNonCached", "MmCached", "MmWriteCombined"};
    PVOID va = MmAllocateContiguousMemorySpecifyCache(NumberOfBytes, LowestAcceptableAddress,
                                                      HighestAcceptableAddress,
                                                      BoundaryAddressMultiple, CacheType);
    DMALINT_ARG a[] = {DMALINT_U("NumberOfBytes", NumberOfBytes),
                       DMALINT_U("LowestAcceptableAddress", LowestAcceptableAddress.QuadPart),
                       DMALINT_U("HighestAcceptableAddress", HighestAcceptableAddress.QuadPart),
                       DMALINT_U("BoundaryAddressMultiple", BoundaryAddressMultiple.QuadPart),
                       DMALINT_SYM("CacheType", (ULONG)CacheType < 3 ? types[CacheType] : NULL, CacheType)};
    DMALINT_ARG r = DMALINT_PTR(NULL, va);
    DMALINT_LOG_CALL("MmAllocateContiguousMemorySpecifyCache", a, &r);
    return va;
}

VOID DmalintMmFreeContiguousMemory(PVOID BaseAddress)
{
    DmalintLogOneArg("MmFreeContiguousMemory", "BaseAddress", BaseAddress);
    MmFreeContiguousMemory(BaseAddress);
}

/* ------------------------------------------------------------------ spin locks and IRQL */
/* An acquire or raise is logged after it, at the IRQL read before it (`at`). */
static void DmalintLogAt(KIRQL at, const char *name, const DMALINT_ARG *args, unsigned count,
                         const DMALINT_ARG *result)
{
    DmalintLogCall(at, "call ", name, args, count, result);
}

VOID DmalintKeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql)
{
    KIRQL at = DmalintGetIrqlHook();
    *OldIrql = KeAcquireSpinLockRaiseToDpc(SpinLock);
    {
        DMALINT_ARG a[] = {DMALINT_PTR("SpinLock", SpinLock), DMALINT_OUT_IRQL("OldIrql", *OldIrql)};
        DmalintLogAt(at, "KeAcquireSpinLock", a, DMALINT_COUNT(a), NULL);
    }
}

KIRQL DmalintKeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock)
{
    KIRQL at = DmalintGetIrqlHook();
    KIRQL old = KeAcquireSpinLockRaiseToDpc(SpinLock);
    DMALINT_ARG a[] = {DMALINT_PTR("SpinLock", SpinLock)};
    DMALINT_ARG r = DMALINT_IRQL(NULL, old);
    DmalintLogAt(at, "KeAcquireSpinLockRaiseToDpc", a, DMALINT_COUNT(a), &r);
    return old;
}

VOID DmalintKeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    DMALINT_ARG a[] = {DMALINT_PTR("SpinLock", SpinLock), DMALINT_IRQL("NewIrql", NewIrql)};
    DMALINT_LOG_CALL("KeReleaseSpinLock", a, NULL);
    KeReleaseSpinLock(SpinLock, NewIrql);
}

VOID DmalintKeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock)
{
    KeAcquireSpinLockAtDpcLevel(SpinLock);
    DmalintLogOneArg("KeAcquireSpinLockAtDpcLevel", "SpinLock", SpinLock);
}

VOID DmalintKeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock)
{
    DmalintLogOneArg("KeReleaseSpinLockFromDpcLevel", "SpinLock", SpinLock);
    KeReleaseSpinLockFromDpcLevel(SpinLock);
}

static void DmalintLogQueued(const char *name, PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE h, KIRQL at)
{
    DMALINT_ARG a[] = {DMALINT_PTR("SpinLock", SpinLock), DMALINT_PTR("LockHandle", h)};
    if (SpinLock) DmalintLogAt(at, name, a, 2, NULL);
    else DmalintLogAt(at, name, a + 1, 1, NULL);
}

VOID DmalintKeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle)
{
    KIRQL at = DmalintGetIrqlHook();
    KeAcquireInStackQueuedSpinLock(SpinLock, LockHandle);
    DmalintLogQueued("KeAcquireInStackQueuedSpinLock", SpinLock, LockHandle, at);
}

VOID DmalintKeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                                     PKLOCK_QUEUE_HANDLE LockHandle)
{
    KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock, LockHandle);
    DmalintLogQueued("KeAcquireInStackQueuedSpinLockAtDpcLevel", SpinLock, LockHandle,
                     DmalintGetIrqlHook());
}

VOID DmalintKeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle)
{
    DmalintLogQueued("KeReleaseInStackQueuedSpinLock", NULL, LockHandle, DmalintGetIrqlHook());
    KeReleaseInStackQueuedSpinLock(LockHandle);
}

VOID DmalintKeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle)
{
    DmalintLogQueued("KeReleaseInStackQueuedSpinLockFromDpcLevel", NULL, LockHandle,
                     DmalintGetIrqlHook());
    KeReleaseInStackQueuedSpinLockFromDpcLevel(LockHandle);
}

VOID DmalintKeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql)
{
    KIRQL at = DmalintGetIrqlHook();
    *OldIrql = DmalintRaiseIrqlHook(NewIrql);
    {
        DMALINT_ARG a[] = {DMALINT_IRQL("NewIrql", NewIrql), DMALINT_OUT_IRQL("OldIrql", *OldIrql)};
        DmalintLogAt(at, "KeRaiseIrql", a, DMALINT_COUNT(a), NULL);
    }
}

VOID DmalintKeLowerIrql(KIRQL NewIrql)
{
    DMALINT_ARG a[] = {DMALINT_IRQL("NewIrql", NewIrql)};
    DMALINT_LOG_CALL("KeLowerIrql", a, NULL);
    DmalintLowerIrqlHook(NewIrql);
}

KIRQL DmalintKeRaiseIrqlToDpcLevel(VOID)
{
    KIRQL at = DmalintGetIrqlHook();
    KIRQL old = DmalintRaiseIrqlHook(DISPATCH_LEVEL);
    DMALINT_ARG r = DMALINT_IRQL(NULL, old);
    DmalintLogAt(at, "KeRaiseIrqlToDpcLevel", NULL, 0, &r);
    return old;
}
