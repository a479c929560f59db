/*
 * dmalint capture kit: StorPort wrappers: the extended functions, the execution-routine trampoline, locks, the @adapter directive.
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
 * One source to add to a miniport's build (it compiles the core in). With the WDK, a miniport
 * that includes storport.h alone still builds this file with wdm.h: the kit reads MDLs.
 */
#include <wdm.h>
#define DMALINT_STORPORT_IMPLEMENTATION 1
#include "dmalint_storport.h"
#define DMALINT_CORE_NO_INCLUDE 1
#include "dmalint_core.c"

/* ------------------------------------------------------------------ symbolic values */
static const char *DmalintStorStatusName(ULONG st)
{
    static const char *const failures[] = {
        "STOR_STATUS_UNSUCCESSFUL", "STOR_STATUS_NOT_IMPLEMENTED",
        "STOR_STATUS_INSUFFICIENT_RESOURCES", "STOR_STATUS_BUFFER_TOO_SMALL",
        "STOR_STATUS_ACCESS_DENIED", "STOR_STATUS_INVALID_PARAMETER",
        "STOR_STATUS_INVALID_DEVICE_REQUEST", "STOR_STATUS_INVALID_IRQL",
        "STOR_STATUS_INVALID_DEVICE_STATE", "STOR_STATUS_INVALID_BUFFER_SIZE",
        "STOR_STATUS_UNSUPPORTED_VERSION", "STOR_STATUS_BUSY"};
    if (st == STOR_STATUS_SUCCESS) return "STOR_STATUS_SUCCESS";
    if (st >= STOR_STATUS_UNSUCCESSFUL && st <= STOR_STATUS_BUSY)
        return failures[st - STOR_STATUS_UNSUCCESSFUL];
    return NULL;
}

static const char *DmalintNameIn(ULONG v, const char *const *names, ULONG count)
{
    return v < count ? names[v] : NULL;
}

static const char *const DmalintCacheTypes[] = {"MmNonCached", "MmCached", "MmWriteCombined"};
static const char *const DmalintLockTypes[] = {"InvalidLock", "DpcLock", "StartIoLock",
                                               "InterruptLock", "ThreadedDpcLock", "DpcLevelLock"};

#define DMALINT_STOR_STATUS(st) DMALINT_SYM(NULL, DmalintStorStatusName(st), st)
#define DMALINT_CACHE_TYPE(v)                                                                  \
    DMALINT_SYM("CacheType", DmalintNameIn((ULONG)(v), DmalintCacheTypes, DMALINT_COUNT(DmalintCacheTypes)), (ULONG)(v))
#define DMALINT_DEVICE_EXTENSION(p) DMALINT_PTR("HwDeviceExtension", p)
/* the pointer a successful allocation wrote, NULL when it failed */
#define DMALINT_WRITTEN(st, p) ((st) == STOR_STATUS_SUCCESS && (p) ? *(p) : NULL)

/* `call Name(HwDeviceExtension=.., Arg=..)` just before a release (kit contract 1). */
static void DmalintLogRelease(const char *name, PVOID HwDeviceExtension, const char *arg, PVOID p)
{
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension), DMALINT_PTR(arg, p)};
    DMALINT_LOG_CALL(name, a, NULL);
}

/* `call Name(args) -> STOR_STATUS_*` after a call that returned `st`; returns `st`. */
static ULONG DmalintLogStatus(const char *name, const DMALINT_ARG *args, unsigned count, ULONG st)
{
    const DMALINT_ARG r = DMALINT_STOR_STATUS(st);
    DmalintLogCall(DMALINT_IRQL_NOW, "call ", name, args, count, &r);
    return st;
}
#define DMALINT_LOG_STATUS(name, args, st) DmalintLogStatus((name), (args), DMALINT_COUNT(args), (st))

/* The `@adapter` directive: text[i] followed by values[i]. */
static void DmalintPutPairs(DMALINT_LINE *L, const char *const *text, const DMALINT_ARG *values, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        DmalintPut(L, text[i]);
        DmalintPutArgValue(L, &values[i]);
    }
}

/* `leave Name -> STOR_STATUS_*` */
static void DmalintLogLeave(const char *name, ULONG st)
{
    const DMALINT_ARG status = DMALINT_STOR_STATUS(st);
    DmalintLeave(name, &status, NULL);
}

/* ------------------------------------------------------------------ the @adapter directive */
static volatile LONG DmalintAdapterWritten;

void DmalintStorPortAdapter(const PORT_CONFIGURATION_INFORMATION *ConfigInfo)
{
    static const char *const text[] = {"@adapter storport dma64=", " scatter_gather=", " maximum_length=",
                                       " map_registers="};
    DMALINT_LINE L;
    ULONG length, breaks, pages;
    if (!ConfigInfo || InterlockedCompareExchange(&DmalintAdapterWritten, 1, 0) != 0) return;
    length = ConfigInfo->MaximumTransferLength;
    breaks = ConfigInfo->NumberOfPhysicalBreaks;
    /* a transfer of `length` bytes spans at most length / PAGE_SIZE + 1 pages; StorPort gives
     * it at most NumberOfPhysicalBreaks + 1 elements */
    pages = length / PAGE_SIZE + 1;
    if (breaks != SP_UNINITIALIZED_VALUE && breaks + 1 < pages) pages = breaks + 1;
    {
        const DMALINT_ARG v[] = {
            DMALINT_BOOL(NULL, ConfigInfo->Dma64BitAddresses &
                                   (SCSI_DMA64_MINIPORT_SUPPORTED | SCSI_DMA64_MINIPORT_FULL64BIT_SUPPORTED)),
            DMALINT_BOOL(NULL, ConfigInfo->ScatterGather), DMALINT_U(NULL, length), DMALINT_U(NULL, pages)};
        DmalintBegin(&L);        /* the directive takes a seq number (kit contract 1)... */
        L.Length = L.Prefix = 0; /* ...but has no context fields */
        DmalintPutPairs(&L, text, v, length && length != SP_UNINITIALIZED_VALUE ? 4 : 2);
        DmalintEnd(&L);
    }
}

/* ------------------------------------------------------------------ StorPortInitialize */
static PHW_FIND_ADAPTER volatile DmalintFindAdapterRoutine;

static ULONG NTAPI DmalintFindAdapter(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                                      PCHAR ArgumentString, PPORT_CONFIGURATION_INFORMATION ConfigInfo,
                                      PBOOLEAN Reserved3)
{
    ULONG r;
    DMALINT_ROUTINE_ENTER(HwStorFindAdapter, DeviceExtension, HwContext, BusInformation,
                          ArgumentString, ConfigInfo, Reserved3);
    r = DmalintFindAdapterRoutine(DeviceExtension, HwContext, BusInformation, ArgumentString,
                                  ConfigInfo, Reserved3);
    DMALINT_ROUTINE_LEAVE(HwStorFindAdapter);
    if (r == SP_RETURN_FOUND) DmalintStorPortAdapter(ConfigInfo);
    return r;
}

static PDRIVER_UNLOAD DmalintPortUnload;

static VOID NTAPI DmalintDriverUnload(PDRIVER_OBJECT DriverObject)
{
    DmalintShutdown(); /* unregister the provider before the image goes */
    if (DmalintPortUnload) DmalintPortUnload(DriverObject);
}

/* DriverEntry, PASSIVE_LEVEL: register the provider; have HwFindAdapter run through
 * DmalintFindAdapter during the call (StorPort copies the table; it is restored after; one
 * HwFindAdapter is wrapped: a second, different one passes through unlogged); and put
 * DmalintDriverUnload in front of the unload routine StorPort installs (Argument1 is the
 * DRIVER_OBJECT). */
ULONG DmalintStorPortInitialize(PVOID Argument1, PVOID Argument2,
                                PHW_INITIALIZATION_DATA HwInitializationData, PVOID Unused)
{
    PHW_FIND_ADAPTER mine = HwInitializationData ? HwInitializationData->HwFindAdapter : NULL;
    PDRIVER_OBJECT driver = (PDRIVER_OBJECT)Argument1;
    int hook = 0;
    ULONG r;
    DmalintInitialize();
    if (mine && mine != DmalintFindAdapter) {
        PVOID before = InterlockedCompareExchangePointer((PVOID volatile *)&DmalintFindAdapterRoutine,
                                                         (PVOID)mine, NULL);
        hook = !before || before == (PVOID)mine;
    }
    if (hook) HwInitializationData->HwFindAdapter = DmalintFindAdapter;
    r = StorPortInitialize(Argument1, Argument2, HwInitializationData, Unused);
    if (hook) HwInitializationData->HwFindAdapter = mine;
    if (driver && driver->DriverUnload && driver->DriverUnload != DmalintDriverUnload) {
        DmalintPortUnload = driver->DriverUnload;
        driver->DriverUnload = DmalintDriverUnload;
    }
    return r;
}

/* ------------------------------------------------------------------ pool and MDLs */
ULONG DmalintStorPortAllocatePool(PVOID HwDeviceExtension, ULONG NumberOfBytes, ULONG Tag,
                                  PVOID *BufferPointer)
{
    ULONG st = StorPortAllocatePool(HwDeviceExtension, NumberOfBytes, Tag, BufferPointer);
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension),
                             DMALINT_U("NumberOfBytes", NumberOfBytes), DMALINT_U("Tag", Tag),
                             DMALINT_OUT_PTR("BufferPointer", DMALINT_WRITTEN(st, BufferPointer))};
    return DMALINT_LOG_STATUS("StorPortAllocatePool", a, st);
}

ULONG DmalintStorPortFreePool(PVOID HwDeviceExtension, PVOID BufferPointer)
{
    DmalintLogRelease("StorPortFreePool", HwDeviceExtension, "BufferPointer", BufferPointer);
    return StorPortFreePool(HwDeviceExtension, BufferPointer);
}

ULONG DmalintStorPortAllocateMdl(PVOID HwDeviceExtension, PVOID BufferPointer, ULONG NumberOfBytes,
                                 PVOID *Mdl)
{
    ULONG st = StorPortAllocateMdl(HwDeviceExtension, BufferPointer, NumberOfBytes, Mdl);
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension),
                             DMALINT_PTR("BufferPointer", BufferPointer),
                             DMALINT_U("NumberOfBytes", NumberOfBytes),
                             DMALINT_OUT_PTR("Mdl", DMALINT_WRITTEN(st, Mdl))};
    return DMALINT_LOG_STATUS("StorPortAllocateMdl", a, st);
}

ULONG DmalintStorPortFreeMdl(PVOID HwDeviceExtension, PVOID Mdl)
{
    DmalintLogRelease("StorPortFreeMdl", HwDeviceExtension, "Mdl", Mdl);
    return StorPortFreeMdl(HwDeviceExtension, Mdl);
}

ULONG DmalintStorPortBuildMdlForNonPagedPool(PVOID HwDeviceExtension, PVOID Mdl)
{
    ULONG st = StorPortBuildMdlForNonPagedPool(HwDeviceExtension, Mdl);
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension), DMALINT_PTR("Mdl", Mdl)};
    return DMALINT_LOG_STATUS("StorPortBuildMdlForNonPagedPool", a, st);
}

ULONG DmalintStorPortAllocateContiguousMemorySpecifyCacheNode(
    PVOID HwDeviceExtension, SIZE_T NumberOfBytes, PHYSICAL_ADDRESS LowestAcceptableAddress,
    PHYSICAL_ADDRESS HighestAcceptableAddress, PHYSICAL_ADDRESS BoundaryAddressMultiple,
    MEMORY_CACHING_TYPE CacheType, NODE_REQUIREMENT PreferredNode, PVOID *BufferPointer)
{
    ULONG st = StorPortAllocateContiguousMemorySpecifyCacheNode(
        HwDeviceExtension, NumberOfBytes, LowestAcceptableAddress, HighestAcceptableAddress,
        BoundaryAddressMultiple, CacheType, PreferredNode, BufferPointer);
    const DMALINT_ARG a[] = {
        DMALINT_DEVICE_EXTENSION(HwDeviceExtension), DMALINT_U("NumberOfBytes", NumberOfBytes),
        DMALINT_U("LowestAcceptableAddress", LowestAcceptableAddress.QuadPart),
        DMALINT_U("HighestAcceptableAddress", HighestAcceptableAddress.QuadPart),
        DMALINT_U("BoundaryAddressMultiple", BoundaryAddressMultiple.QuadPart),
        DMALINT_CACHE_TYPE(CacheType),
        DMALINT_SYM("PreferredNode", PreferredNode == MM_ANY_NODE_OK ? "MM_ANY_NODE_OK" : NULL, PreferredNode),
        DMALINT_OUT_PTR("BufferPointer", DMALINT_WRITTEN(st, BufferPointer))};
    return DMALINT_LOG_STATUS("StorPortAllocateContiguousMemorySpecifyCacheNode", a, st);
}

ULONG DmalintStorPortFreeContiguousMemorySpecifyCache(PVOID HwDeviceExtension, PVOID BaseAddress,
                                                      SIZE_T NumberOfBytes,
                                                      MEMORY_CACHING_TYPE CacheType)
{
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension),
                             DMALINT_PTR("BaseAddress", BaseAddress),
                             DMALINT_U("NumberOfBytes", NumberOfBytes), DMALINT_CACHE_TYPE(CacheType)};
    DMALINT_LOG_CALL("StorPortFreeContiguousMemorySpecifyCache", a, NULL);
    return StorPortFreeContiguousMemorySpecifyCache(HwDeviceExtension, BaseAddress, NumberOfBytes,
                                                    CacheType);
}

/* ------------------------------------------------------------------ scatter/gather */
typedef struct _DMALINT_SP_TRAMPOLINE {
    PpostScaterGatherExecute Routine;
    PVOID Context;
    PVOID HwDeviceExtension;
} DMALINT_SP_TRAMPOLINE;

/* The ExecutionRoutine the port runs (DISPATCH_LEVEL): logged under its role name. */
static VOID NTAPI DmalintExecutionRoutine(PVOID *DeviceObject, PVOID *Irp,
                                          PSTOR_SCATTER_GATHER_LIST ScatterGather, PVOID Context)
{
    DMALINT_SP_TRAMPOLINE *t = (DMALINT_SP_TRAMPOLINE *)Context;
    PpostScaterGatherExecute routine = t->Routine;
    PVOID context = t->Context;
    StorPortFreePool(t->HwDeviceExtension, t);
    DMALINT_ROUTINE_ENTER(AdapterListControl, DeviceObject, Irp, ScatterGather, context);
    if (ScatterGather) DmalintLogSgl((const SCATTER_GATHER_LIST *)ScatterGather); /* the same layout */
    routine(DeviceObject, Irp, ScatterGather, context);
    DMALINT_ROUTINE_LEAVE(AdapterListControl);
}

ULONG DmalintStorPortBuildScatterGatherList(PVOID HwDeviceExtension, PVOID Mdl, PVOID CurrentVa,
                                            ULONG Length, PpostScaterGatherExecute ExecutionRoutine,
                                            PVOID Context, BOOLEAN WriteToDevice,
                                            PVOID ScatterGatherBuffer,
                                            ULONG ScatterGatherBufferLength)
{
    DMALINT_SP_TRAMPOLINE *t = NULL;
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension), DMALINT_PTR("Mdl", Mdl),
                             DMALINT_PTR("CurrentVa", CurrentVa), DMALINT_U("Length", Length),
                             DMALINT_PTR("ExecutionRoutine", (ULONG_PTR)ExecutionRoutine),
                             DMALINT_PTR("Context", Context),
                             DMALINT_BOOL("WriteToDevice", WriteToDevice),
                             DMALINT_PTR("ScatterGatherBuffer", ScatterGatherBuffer),
                             DMALINT_U("ScatterGatherBufferLength", ScatterGatherBufferLength)};
    ULONG st;
    if (StorPortAllocatePool(HwDeviceExtension, sizeof(*t), DMALINT_POOL_TAG, (PVOID *)&t) !=
            STOR_STATUS_SUCCESS || !t) {
        t = NULL;
        DmalintLogLost(3, "no memory for an execution-routine trampoline: the routine's run is not logged");
    } else {
        t->Routine = ExecutionRoutine;
        t->Context = Context;
        t->HwDeviceExtension = HwDeviceExtension;
    }
    DmalintLogMdlChain((PMDL)Mdl);
    DmalintLogCall(DMALINT_IRQL_NOW, "enter ", "StorPortBuildScatterGatherList", a, DMALINT_COUNT(a), NULL);
    st = StorPortBuildScatterGatherList(HwDeviceExtension, Mdl, CurrentVa, Length,
                                        t ? DmalintExecutionRoutine : ExecutionRoutine,
                                        t ? (PVOID)t : Context, WriteToDevice, ScatterGatherBuffer,
                                        ScatterGatherBufferLength);
    if (st != STOR_STATUS_SUCCESS && t) StorPortFreePool(HwDeviceExtension, t); /* never ran */
    DmalintLogLeave("StorPortBuildScatterGatherList", st);
    return st;
}

ULONG DmalintStorPortPutScatterGatherList(PVOID HwDeviceExtension,
                                          PSTOR_SCATTER_GATHER_LIST ScatterGatherList,
                                          BOOLEAN WriteToDevice)
{
    const DMALINT_ARG a[] = {DMALINT_DEVICE_EXTENSION(HwDeviceExtension),
                             DMALINT_PTR("ScatterGatherList", ScatterGatherList),
                             DMALINT_BOOL("WriteToDevice", WriteToDevice)};
    DMALINT_LOG_CALL("StorPortPutScatterGatherList", a, NULL);
    return StorPortPutScatterGatherList(HwDeviceExtension, ScatterGatherList, WriteToDevice);
}

/* ------------------------------------------------------------------ spin locks */
VOID DmalintStorPortAcquireSpinLock(PVOID DeviceExtension, STOR_SPINLOCK SpinLock, PVOID LockContext,
                                    PSTOR_LOCK_HANDLE LockHandle)
{
    StorPortAcquireSpinLock(DeviceExtension, SpinLock, LockContext, LockHandle);
    {
        const DMALINT_ARG a[] = {
            DMALINT_PTR("DeviceExtension", DeviceExtension),
            DMALINT_SYM("SpinLock", DmalintNameIn((ULONG)SpinLock, DmalintLockTypes, DMALINT_COUNT(DmalintLockTypes)), (ULONG)SpinLock),
            DMALINT_PTR("LockContext", LockContext), DMALINT_OUT_PTR("LockHandle", LockHandle)};
        DMALINT_LOG_CALL("StorPortAcquireSpinLock", a, NULL);
    }
}

VOID DmalintStorPortReleaseSpinLock(PVOID DeviceExtension, PSTOR_LOCK_HANDLE LockHandle)
{
    const DMALINT_ARG a[] = {DMALINT_PTR("DeviceExtension", DeviceExtension),
                             DMALINT_PTR("LockHandle", LockHandle)};
    DMALINT_LOG_CALL("StorPortReleaseSpinLock", a, NULL);
    StorPortReleaseSpinLock(DeviceExtension, LockHandle);
}
