/*
 * dmalint capture kit: StorPort header. Include after storport.h; add dmalint_storport.c to the build.
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
 * Every record is one dmatrace line (kit contract 1), without `irql=`: a miniport must not
 * call KeGetCurrentIrql (SDV), so dmalint learns the level from the routine a call runs in.
 * The StorPort DDIs are redirected by macro: call sites do not change. StorPortInitialize is
 * redirected too: the kit registers the ETW provider there and wraps HwFindAdapter, which
 * writes `@adapter storport ...` once from the PORT_CONFIGURATION_INFORMATION the miniport
 * filled in (define DMALINT_STORPORT_NO_INIT_HOOK to leave StorPortInitialize alone, e.g.
 * in a virtual miniport, and call DMALINT_STORPORT_ADAPTER(ConfigInfo) in HwFindAdapter).
 */
#ifndef DMALINT_STORPORT_H
#define DMALINT_STORPORT_H

#ifdef DMALINT_CAPTURE_H
#error "dmalint: include dmalint_capture.h (WDM) or dmalint_storport.h (StorPort), not both"
#endif
#ifndef DMALINT_STORPORT
#define DMALINT_STORPORT 1
#endif

/* The port header, if the miniport has not included it yet. mingw-w64's storport.h needs
 * wdm.h and srb.h first, and defines srb.h's SCSI_WMI_REQUEST_BLOCK again (renamed away). */
#if !defined(_NTSTORPORT_) && !defined(__STORPORT_H)
#ifdef __MINGW32__
#include <wdm.h>
#include <srb.h>
#define _SCSI_WMI_REQUEST_BLOCK _DMALINT_STORPORT_WMI_REQUEST_BLOCK
#define SCSI_WMI_REQUEST_BLOCK DMALINT_STORPORT_WMI_REQUEST_BLOCK
#define PSCSI_WMI_REQUEST_BLOCK PDMALINT_STORPORT_WMI_REQUEST_BLOCK
#include <storport.h>
#undef _SCSI_WMI_REQUEST_BLOCK
#undef SCSI_WMI_REQUEST_BLOCK
#undef PSCSI_WMI_REQUEST_BLOCK
#else
#include <storport.h>
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ an older storport.h
 * mingw-w64's storport.h predates the extended functions (Windows Server 2003 SP1 on) and
 * the STOR_STATUS codes: declared here as the WDK declares them (storport.h), guarded by
 * the WDK's STOR_STATUS_SUCCESS. */
#ifndef STOR_STATUS_SUCCESS
#define DMALINT_STORPORT_OLD_HEADER 1 /* also: HW_INITIALIZATION_DATA has no HwBuildIo */

#define STOR_STATUS_SUCCESS (0x00000000L)
#define STOR_STATUS_UNSUCCESSFUL (0xC1000001L)
#define STOR_STATUS_NOT_IMPLEMENTED (0xC1000002L)
#define STOR_STATUS_INSUFFICIENT_RESOURCES (0xC1000003L)
#define STOR_STATUS_BUFFER_TOO_SMALL (0xC1000004L)
#define STOR_STATUS_ACCESS_DENIED (0xC1000005L)
#define STOR_STATUS_INVALID_PARAMETER (0xC1000006L)
#define STOR_STATUS_INVALID_DEVICE_REQUEST (0xC1000007L)
#define STOR_STATUS_INVALID_IRQL (0xC1000008L)
#define STOR_STATUS_INVALID_DEVICE_STATE (0xC1000009L)
#define STOR_STATUS_INVALID_BUFFER_SIZE (0xC100000AL)
#define STOR_STATUS_UNSUPPORTED_VERSION (0xC100000BL)
#define STOR_STATUS_BUSY (0xC100000CL)

typedef enum _STORPORT_FUNCTION_CODE {
    ExtFunctionAllocatePool,
    ExtFunctionFreePool,
    ExtFunctionAllocateMdl,
    ExtFunctionFreeMdl,
    ExtFunctionBuildMdlForNonPagedPool,
    ExtFunctionGetSystemAddress,
    ExtFunctionGetOriginalMdl,
    ExtFunctionCompleteServiceIrp,
    ExtFunctionGetDeviceObjects,
    ExtFunctionBuildScatterGatherList,
    ExtFunctionPutScatterGatherList,
    ExtFunctionAcquireMSISpinLock,
    ExtFunctionReleaseMSISpinLock,
    ExtFunctionGetMessageInterruptInformation,
    ExtFunctionInitializePerformanceOptimizations,
    ExtFunctionGetStartIoPerformanceParameters,
    ExtFunctionLogSystemEvent,
    ExtFunctionGetCurrentProcessorNumber,
    ExtFunctionGetActiveGroupCount,
    ExtFunctionGetGroupAffinity,
    ExtFunctionGetActiveNodeCount,
    ExtFunctionGetNodeAffinity,
    ExtFunctionGetHighestNodeNumber,
    ExtFunctionGetLogicalProcessorRelationship,
    ExtFunctionAllocateContiguousMemorySpecifyCacheNode,
    ExtFunctionFreeContiguousMemorySpecifyCache
} STORPORT_FUNCTION_CODE;

/* SCSI_NOTIFICATION_TYPE values storport.h adds to srb.h's. */
#define DMALINT_SP_ENABLE_PASSIVE_INITIALIZATION ((SCSI_NOTIFICATION_TYPE)0x1000)
#define DMALINT_SP_INITIALIZE_DPC ((SCSI_NOTIFICATION_TYPE)0x1001)
#define DMALINT_SP_ISSUE_DPC ((SCSI_NOTIFICATION_TYPE)0x1002)
#define DMALINT_SP_ACQUIRE_SPIN_LOCK ((SCSI_NOTIFICATION_TYPE)0x1003)
#define DMALINT_SP_RELEASE_SPIN_LOCK ((SCSI_NOTIFICATION_TYPE)0x1004)

typedef enum _STOR_SPINLOCK {
    InvalidLock = 0,
    DpcLock = 1,
    StartIoLock,
    InterruptLock,
    ThreadedDpcLock,
    DpcLevelLock
} STOR_SPINLOCK;

typedef struct _STOR_LOCK_HANDLE {
    STOR_SPINLOCK Lock;
    struct {
        struct {
            PVOID Next;
            PVOID Lock;
        } LockQueue;
        KIRQL OldIrql;
    } Context;
} STOR_LOCK_HANDLE, *PSTOR_LOCK_HANDLE;

typedef struct _DPC_BUFFER {
    CSHORT Type;
    UCHAR Number;
    UCHAR Importance;
    struct {
        PVOID F;
        PVOID B;
    } DUMMYSTRUCTNAME;
    PVOID DeferredRoutine;
    PVOID DeferredContext;
    PVOID SystemArgument1;
    PVOID SystemArgument2;
    PVOID DpcData;
} DPC_BUFFER;

typedef struct _STOR_DPC {
    DPC_BUFFER Dpc;
    ULONG_PTR Lock;
} STOR_DPC, *PSTOR_DPC;

typedef VOID(NTAPI HW_DPC_ROUTINE)(PSTOR_DPC Dpc, PVOID HwDeviceExtension, PVOID SystemArgument1,
                                   PVOID SystemArgument2);
typedef HW_DPC_ROUTINE *PHW_DPC_ROUTINE;
typedef BOOLEAN(NTAPI *PHW_PASSIVE_INITIALIZE_ROUTINE)(PVOID DeviceExtension);
typedef BOOLEAN(NTAPI *PHW_BUILDIO)(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb);
typedef VOID(NTAPI *PpostScaterGatherExecute)(PVOID *DeviceObject, PVOID *Irp,
                                              PSTOR_SCATTER_GATHER_LIST ScatterGather, PVOID Context);

STORPORTAPI ULONG __cdecl StorPortExtendedFunction(STORPORT_FUNCTION_CODE FunctionCode,
                                                  PVOID HwDeviceExtension, ...);

#define DMALINT_SP_INLINE static __inline
DMALINT_SP_INLINE ULONG StorPortAllocatePool(PVOID HwDeviceExtension, ULONG NumberOfBytes, ULONG Tag,
                                             PVOID *BufferPointer)
{
    return StorPortExtendedFunction(ExtFunctionAllocatePool, HwDeviceExtension, NumberOfBytes, Tag,
                                    BufferPointer);
}
DMALINT_SP_INLINE ULONG StorPortFreePool(PVOID HwDeviceExtension, PVOID BufferPointer)
{
    return StorPortExtendedFunction(ExtFunctionFreePool, HwDeviceExtension, BufferPointer);
}
DMALINT_SP_INLINE ULONG StorPortAllocateMdl(PVOID HwDeviceExtension, PVOID BufferPointer,
                                            ULONG NumberOfBytes, PVOID *Mdl)
{
    return StorPortExtendedFunction(ExtFunctionAllocateMdl, HwDeviceExtension, BufferPointer,
                                    NumberOfBytes, Mdl);
}
DMALINT_SP_INLINE ULONG StorPortFreeMdl(PVOID HwDeviceExtension, PVOID Mdl)
{
    return StorPortExtendedFunction(ExtFunctionFreeMdl, HwDeviceExtension, Mdl);
}
DMALINT_SP_INLINE ULONG StorPortBuildMdlForNonPagedPool(PVOID HwDeviceExtension, PVOID Mdl)
{
    return StorPortExtendedFunction(ExtFunctionBuildMdlForNonPagedPool, HwDeviceExtension, Mdl);
}
DMALINT_SP_INLINE ULONG StorPortBuildScatterGatherList(PVOID HwDeviceExtension, PVOID Mdl,
                                                       PVOID CurrentVa, ULONG Length,
                                                       PpostScaterGatherExecute ExecutionRoutine,
                                                       PVOID Context, BOOLEAN WriteToDevice,
                                                       PVOID ScatterGatherBuffer,
                                                       ULONG ScatterGatherBufferLength)
{
    return StorPortExtendedFunction(ExtFunctionBuildScatterGatherList, HwDeviceExtension, Mdl,
                                    CurrentVa, Length, ExecutionRoutine, Context, WriteToDevice,
                                    ScatterGatherBuffer, ScatterGatherBufferLength);
}
DMALINT_SP_INLINE ULONG StorPortPutScatterGatherList(PVOID HwDeviceExtension,
                                                     PSTOR_SCATTER_GATHER_LIST ScatterGatherList,
                                                     BOOLEAN WriteToDevice)
{
    return StorPortExtendedFunction(ExtFunctionPutScatterGatherList, HwDeviceExtension,
                                    ScatterGatherList, WriteToDevice);
}
DMALINT_SP_INLINE ULONG StorPortAllocateContiguousMemorySpecifyCacheNode(
    PVOID HwDeviceExtension, SIZE_T NumberOfBytes, PHYSICAL_ADDRESS LowestAcceptableAddress,
    PHYSICAL_ADDRESS HighestAcceptableAddress, PHYSICAL_ADDRESS BoundaryAddressMultiple,
    MEMORY_CACHING_TYPE CacheType, NODE_REQUIREMENT PreferredNode, PVOID *BufferPointer)
{
    return StorPortExtendedFunction(ExtFunctionAllocateContiguousMemorySpecifyCacheNode,
                                    HwDeviceExtension, NumberOfBytes, LowestAcceptableAddress,
                                    HighestAcceptableAddress, BoundaryAddressMultiple, CacheType,
                                    PreferredNode, BufferPointer);
}
DMALINT_SP_INLINE ULONG StorPortFreeContiguousMemorySpecifyCache(PVOID HwDeviceExtension,
                                                                 PVOID BaseAddress,
                                                                 SIZE_T NumberOfBytes,
                                                                 MEMORY_CACHING_TYPE CacheType)
{
    return StorPortExtendedFunction(ExtFunctionFreeContiguousMemorySpecifyCache, HwDeviceExtension,
                                    BaseAddress, NumberOfBytes, CacheType);
}
DMALINT_SP_INLINE BOOLEAN StorPortEnablePassiveInitialization(
    PVOID DeviceExtension, PHW_PASSIVE_INITIALIZE_ROUTINE HwPassiveInitializeRoutine)
{
    LONG succ = FALSE;
    StorPortNotification(DMALINT_SP_ENABLE_PASSIVE_INITIALIZATION, DeviceExtension,
                         HwPassiveInitializeRoutine, &succ);
    return (BOOLEAN)succ;
}
DMALINT_SP_INLINE VOID StorPortInitializeDpc(PVOID DeviceExtension, PSTOR_DPC Dpc,
                                             PHW_DPC_ROUTINE HwDpcRoutine)
{
    StorPortNotification(DMALINT_SP_INITIALIZE_DPC, DeviceExtension, Dpc, HwDpcRoutine);
}
DMALINT_SP_INLINE BOOLEAN StorPortIssueDpc(PVOID DeviceExtension, PSTOR_DPC Dpc,
                                           PVOID SystemArgument1, PVOID SystemArgument2)
{
    LONG succ = FALSE;
    StorPortNotification(DMALINT_SP_ISSUE_DPC, DeviceExtension, Dpc, SystemArgument1,
                         SystemArgument2, &succ);
    return (BOOLEAN)succ;
}
DMALINT_SP_INLINE VOID StorPortAcquireSpinLock(PVOID DeviceExtension, STOR_SPINLOCK SpinLock,
                                               PVOID LockContext, PSTOR_LOCK_HANDLE LockHandle)
{
    StorPortNotification(DMALINT_SP_ACQUIRE_SPIN_LOCK, DeviceExtension, SpinLock, LockContext,
                         LockHandle);
}
DMALINT_SP_INLINE VOID StorPortReleaseSpinLock(PVOID DeviceExtension, PSTOR_LOCK_HANDLE LockHandle)
{
    StorPortNotification(DMALINT_SP_RELEASE_SPIN_LOCK, DeviceExtension, LockHandle);
}
#endif /* !STOR_STATUS_SUCCESS */

#ifdef __cplusplus
}
#endif

#ifndef NTKERNELAPI /* a miniport that includes storport.h alone */
#define NTKERNELAPI DECLSPEC_IMPORT
#endif
#include "dmalint_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ the wrappers */
ULONG DmalintStorPortInitialize(PVOID Argument1, PVOID Argument2,
                                PHW_INITIALIZATION_DATA HwInitializationData, PVOID Unused);
void DmalintStorPortAdapter(const PORT_CONFIGURATION_INFORMATION *ConfigInfo);
ULONG DmalintStorPortAllocatePool(PVOID HwDeviceExtension, ULONG NumberOfBytes, ULONG Tag,
                                  PVOID *BufferPointer);
ULONG DmalintStorPortFreePool(PVOID HwDeviceExtension, PVOID BufferPointer);
ULONG DmalintStorPortAllocateMdl(PVOID HwDeviceExtension, PVOID BufferPointer, ULONG NumberOfBytes,
                                 PVOID *Mdl);
ULONG DmalintStorPortFreeMdl(PVOID HwDeviceExtension, PVOID Mdl);
ULONG DmalintStorPortBuildMdlForNonPagedPool(PVOID HwDeviceExtension, PVOID Mdl);
ULONG DmalintStorPortAllocateContiguousMemorySpecifyCacheNode(
    PVOID HwDeviceExtension, SIZE_T NumberOfBytes, PHYSICAL_ADDRESS LowestAcceptableAddress,
    PHYSICAL_ADDRESS HighestAcceptableAddress, PHYSICAL_ADDRESS BoundaryAddressMultiple,
    MEMORY_CACHING_TYPE CacheType, NODE_REQUIREMENT PreferredNode, PVOID *BufferPointer);
ULONG DmalintStorPortFreeContiguousMemorySpecifyCache(PVOID HwDeviceExtension, PVOID BaseAddress,
                                                      SIZE_T NumberOfBytes,
                                                      MEMORY_CACHING_TYPE CacheType);
ULONG DmalintStorPortBuildScatterGatherList(PVOID HwDeviceExtension, PVOID Mdl, PVOID CurrentVa,
                                            ULONG Length, PpostScaterGatherExecute ExecutionRoutine,
                                            PVOID Context, BOOLEAN WriteToDevice,
                                            PVOID ScatterGatherBuffer,
                                            ULONG ScatterGatherBufferLength);
ULONG DmalintStorPortPutScatterGatherList(PVOID HwDeviceExtension,
                                          PSTOR_SCATTER_GATHER_LIST ScatterGatherList,
                                          BOOLEAN WriteToDevice);
VOID DmalintStorPortAcquireSpinLock(PVOID DeviceExtension, STOR_SPINLOCK SpinLock, PVOID LockContext,
                                    PSTOR_LOCK_HANDLE LockHandle);
VOID DmalintStorPortReleaseSpinLock(PVOID DeviceExtension, PSTOR_LOCK_HANDLE LockHandle);

/* ------------------------------------------------------------------ driver routines
 * DMALINT_ROUTINE_ENTER(HwStorStartIo, DeviceExtension, Srb) (dmalint_core.h): the parameters
 * of the routines a port runs. */
#define DMALINT_PARAMS_HwStorFindAdapter                                                       \
    "DeviceExtension", "HwContext", "BusInformation", "ArgumentString", "ConfigInfo", "Reserved3"
#define DMALINT_PARAMS_HwStorPassiveInitializeRoutine "DeviceExtension"
#define DMALINT_PARAMS_HwStorBuildIo "DeviceExtension", "Srb"
#define DMALINT_PARAMS_HwStorStartIo "DeviceExtension", "Srb"
#define DMALINT_PARAMS_HwStorInterrupt "DeviceExtension"
#define DMALINT_PARAMS_HwStorDpcRoutine "Dpc", "HwDeviceExtension", "SystemArgument1", "SystemArgument2"
#define DMALINT_PARAMS_AdapterListControl "DeviceObject", "Irp", "ScatterGather", "Context"

/* Only with DMALINT_STORPORT_NO_INIT_HOOK: the `@adapter storport` directive, once. */
#define DMALINT_STORPORT_ADAPTER(ConfigInfo) DmalintStorPortAdapter(ConfigInfo)

#ifdef __cplusplus
}
#endif

/* ------------------------------------------------------------------ redirections */
#ifndef DMALINT_STORPORT_IMPLEMENTATION

#ifndef DMALINT_STORPORT_NO_INIT_HOOK
#undef StorPortInitialize
#define StorPortInitialize DmalintStorPortInitialize
#endif
#undef StorPortAllocatePool
#define StorPortAllocatePool DmalintStorPortAllocatePool
#undef StorPortFreePool
#define StorPortFreePool DmalintStorPortFreePool
#undef StorPortAllocateMdl
#define StorPortAllocateMdl DmalintStorPortAllocateMdl
#undef StorPortFreeMdl
#define StorPortFreeMdl DmalintStorPortFreeMdl
#undef StorPortBuildMdlForNonPagedPool
#define StorPortBuildMdlForNonPagedPool DmalintStorPortBuildMdlForNonPagedPool
#undef StorPortAllocateContiguousMemorySpecifyCacheNode
#define StorPortAllocateContiguousMemorySpecifyCacheNode DmalintStorPortAllocateContiguousMemorySpecifyCacheNode
#undef StorPortFreeContiguousMemorySpecifyCache
#define StorPortFreeContiguousMemorySpecifyCache DmalintStorPortFreeContiguousMemorySpecifyCache
#undef StorPortBuildScatterGatherList
#define StorPortBuildScatterGatherList DmalintStorPortBuildScatterGatherList
#undef StorPortPutScatterGatherList
#define StorPortPutScatterGatherList DmalintStorPortPutScatterGatherList
#undef StorPortAcquireSpinLock
#define StorPortAcquireSpinLock DmalintStorPortAcquireSpinLock
#undef StorPortReleaseSpinLock
#define StorPortReleaseSpinLock DmalintStorPortReleaseSpinLock

#endif /* !DMALINT_STORPORT_IMPLEMENTATION */

#endif /* DMALINT_STORPORT_H */
