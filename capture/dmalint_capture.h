/*
 * dmalint capture kit: WDM header. Include after wdm.h; add dmalint_capture.c to the build.
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
#ifndef DMALINT_CAPTURE_H
#define DMALINT_CAPTURE_H

#include "dmalint_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ExAllocatePool2 (Windows 10 2004) is missing from older headers, mingw's among them. */
#ifndef POOL_FLAG_NON_PAGED
typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_USE_QUOTA 0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED 0x0000000000000002ULL
#define POOL_FLAG_SESSION 0x0000000000000004ULL
#define POOL_FLAG_CACHE_ALIGNED 0x0000000000000008ULL
#define POOL_FLAG_RAISE_ON_FAILURE 0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED 0x0000000000000100ULL
NTKERNELAPI PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
#endif

/* IRQL changes the kit makes on the driver's behalf go through these (tests replace them:
 * KeRaiseIrql/KeLowerIrql are CR8 inlines on x64). */
typedef KIRQL (*DMALINT_RAISE_IRQL)(KIRQL NewIrql);
typedef VOID (*DMALINT_LOWER_IRQL)(KIRQL NewIrql);
extern DMALINT_RAISE_IRQL DmalintRaiseIrqlHook;
extern DMALINT_LOWER_IRQL DmalintLowerIrqlHook;

PDMA_ADAPTER DmalintIoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject,
                                    struct _DEVICE_DESCRIPTION *DeviceDescription,
                                    PULONG NumberOfMapRegisters);
PVOID DmalintExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
PVOID DmalintExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
VOID DmalintExFreePoolWithTag(PVOID P, ULONG Tag);
VOID DmalintExFreePool(PVOID P);
PMDL DmalintIoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                          BOOLEAN ChargeQuota, PIRP Irp);
VOID DmalintIoFreeMdl(PMDL Mdl);
VOID DmalintMmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList);
VOID DmalintMmProbeAndLockPages(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode,
                                LOCK_OPERATION Operation);
VOID DmalintMmUnlockPages(PMDL MemoryDescriptorList);
PVOID DmalintMmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority);
PVOID DmalintMmAllocateContiguousMemorySpecifyCache(SIZE_T NumberOfBytes,
                                                    PHYSICAL_ADDRESS LowestAcceptableAddress,
                                                    PHYSICAL_ADDRESS HighestAcceptableAddress,
                                                    PHYSICAL_ADDRESS BoundaryAddressMultiple,
                                                    MEMORY_CACHING_TYPE CacheType);
VOID DmalintMmFreeContiguousMemory(PVOID BaseAddress);
VOID DmalintKeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql);
KIRQL DmalintKeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock);
VOID DmalintKeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
VOID DmalintKeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
VOID DmalintKeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock);
VOID DmalintKeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
VOID DmalintKeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                                     PKLOCK_QUEUE_HANDLE LockHandle);
VOID DmalintKeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle);
VOID DmalintKeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle);
VOID DmalintKeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);
VOID DmalintKeLowerIrql(KIRQL NewIrql);
KIRQL DmalintKeRaiseIrqlToDpcLevel(VOID);

/* Driver routines the system runs (DMALINT_ROUTINE_ENTER in dmalint_core.h): their parameters. */
#define DMALINT_PARAMS_StartIo "DeviceObject", "Irp"
#define DMALINT_PARAMS_InterruptService "Interrupt", "ServiceContext"
#define DMALINT_PARAMS_DpcForIsr "Dpc", "DeviceObject", "Irp", "Context"
#define DMALINT_PARAMS_CustomDpc "Dpc", "DeferredContext", "SystemArgument1", "SystemArgument2"

#ifdef __cplusplus
}
#endif

/* ------------------------------------------------------------------ redirections */
#ifndef DMALINT_CAPTURE_IMPLEMENTATION

#undef IoGetDmaAdapter
#define IoGetDmaAdapter DmalintIoGetDmaAdapter
#undef ExAllocatePoolWithTag
#define ExAllocatePoolWithTag DmalintExAllocatePoolWithTag
#undef ExAllocatePool2
#define ExAllocatePool2 DmalintExAllocatePool2
#undef ExFreePoolWithTag
#define ExFreePoolWithTag DmalintExFreePoolWithTag
#undef ExFreePool
#define ExFreePool DmalintExFreePool
#undef IoAllocateMdl
#define IoAllocateMdl DmalintIoAllocateMdl
#undef IoFreeMdl
#define IoFreeMdl DmalintIoFreeMdl
#undef MmBuildMdlForNonPagedPool
#define MmBuildMdlForNonPagedPool DmalintMmBuildMdlForNonPagedPool
#undef MmProbeAndLockPages
#define MmProbeAndLockPages DmalintMmProbeAndLockPages
#undef MmUnlockPages
#define MmUnlockPages DmalintMmUnlockPages
#undef MmGetSystemAddressForMdlSafe
#define MmGetSystemAddressForMdlSafe(Mdl, Priority) DmalintMmGetSystemAddressForMdlSafe((Mdl), (Priority))
#undef MmAllocateContiguousMemorySpecifyCache
#define MmAllocateContiguousMemorySpecifyCache DmalintMmAllocateContiguousMemorySpecifyCache
#undef MmFreeContiguousMemory
#define MmFreeContiguousMemory DmalintMmFreeContiguousMemory
#undef KeAcquireSpinLock
#define KeAcquireSpinLock(SpinLock, OldIrql) DmalintKeAcquireSpinLock((SpinLock), (OldIrql))
#undef KeAcquireSpinLockRaiseToDpc
#define KeAcquireSpinLockRaiseToDpc DmalintKeAcquireSpinLockRaiseToDpc
#undef KeReleaseSpinLock
#define KeReleaseSpinLock DmalintKeReleaseSpinLock
#undef KeAcquireSpinLockAtDpcLevel
#define KeAcquireSpinLockAtDpcLevel DmalintKeAcquireSpinLockAtDpcLevel
#undef KeReleaseSpinLockFromDpcLevel
#define KeReleaseSpinLockFromDpcLevel DmalintKeReleaseSpinLockFromDpcLevel
#undef KeAcquireInStackQueuedSpinLock
#define KeAcquireInStackQueuedSpinLock DmalintKeAcquireInStackQueuedSpinLock
#undef KeAcquireInStackQueuedSpinLockAtDpcLevel
#define KeAcquireInStackQueuedSpinLockAtDpcLevel DmalintKeAcquireInStackQueuedSpinLockAtDpcLevel
#undef KeReleaseInStackQueuedSpinLock
#define KeReleaseInStackQueuedSpinLock DmalintKeReleaseInStackQueuedSpinLock
#undef KeReleaseInStackQueuedSpinLockFromDpcLevel
#define KeReleaseInStackQueuedSpinLockFromDpcLevel DmalintKeReleaseInStackQueuedSpinLockFromDpcLevel
#undef KeRaiseIrql
#define KeRaiseIrql(NewIrql, OldIrql) DmalintKeRaiseIrql((NewIrql), (OldIrql))
#undef KeLowerIrql
#define KeLowerIrql DmalintKeLowerIrql
#undef KeRaiseIrqlToDpcLevel
#define KeRaiseIrqlToDpcLevel DmalintKeRaiseIrqlToDpcLevel

/* Legacy exports that would receive the wrapper adapter: refused at compile time. */
#define DMALINT_REFUSED(msg) (sizeof(struct { _Static_assert(0, msg); int dmalint_refused_; }))
#undef IoMapTransfer
#define IoMapTransfer(...) DMALINT_REFUSED("dmalint capture: IoMapTransfer takes the adapter the kit wraps: call Adapter->DmaOperations->MapTransfer")
#undef IoFlushAdapterBuffers
#define IoFlushAdapterBuffers(...) DMALINT_REFUSED("dmalint capture: IoFlushAdapterBuffers takes the adapter the kit wraps: call Adapter->DmaOperations->FlushAdapterBuffers")
#undef IoFreeMapRegisters
#define IoFreeMapRegisters(...) DMALINT_REFUSED("dmalint capture: IoFreeMapRegisters takes the adapter the kit wraps: call Adapter->DmaOperations->FreeMapRegisters")
#undef IoFreeAdapterChannel
#define IoFreeAdapterChannel(...) DMALINT_REFUSED("dmalint capture: IoFreeAdapterChannel takes the adapter the kit wraps: call Adapter->DmaOperations->FreeAdapterChannel")
#undef IoAllocateAdapterChannel
#define IoAllocateAdapterChannel(...) DMALINT_REFUSED("dmalint capture: IoAllocateAdapterChannel takes the adapter the kit wraps: call Adapter->DmaOperations->AllocateAdapterChannel")
#undef HalAllocateCommonBuffer
#define HalAllocateCommonBuffer(...) DMALINT_REFUSED("dmalint capture: HalAllocateCommonBuffer takes the adapter the kit wraps: call Adapter->DmaOperations->AllocateCommonBuffer")
#undef HalFreeCommonBuffer
#define HalFreeCommonBuffer(...) DMALINT_REFUSED("dmalint capture: HalFreeCommonBuffer takes the adapter the kit wraps: call Adapter->DmaOperations->FreeCommonBuffer")

#endif /* !DMALINT_CAPTURE_IMPLEMENTATION */

#endif /* DMALINT_CAPTURE_H */
