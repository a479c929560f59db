/*
 * dmalint capture kit: test fake port driver: the StorPort exports the kit and the StorPort sample call, on top of the fake kernel.
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
 */
#include <wdm.h>
#include <stdarg.h>
#define DMALINT_STORPORT_IMPLEMENTATION 1 /* the real names: this file is the port */
#include "dmalint_storport.h"
#include "fake_kernel.h"
#include "fake_storport.h"

PHW_FIND_ADAPTER FakeSpFindAdapter;
PHW_INITIALIZE FakeSpHwInitialize;
PHW_STARTIO FakeSpStartIo;
PHW_INTERRUPT FakeSpInterrupt;
ULONG FakeSpDeviceExtensionSize;
ULONG FakeSpSrbExtensionSize;
PHW_PASSIVE_INITIALIZE_ROUTINE FakeSpPassiveInitialize;
ULONG FakeSpCompleted;
KIRQL FakeSpDirql = 5;

/* StorPort lists are the HAL's: the same layout. */
_Static_assert(sizeof(STOR_SCATTER_GATHER_ELEMENT) == sizeof(SCATTER_GATHER_ELEMENT), "element layout");
_Static_assert(FIELD_OFFSET(STOR_SCATTER_GATHER_LIST, List) == FIELD_OFFSET(SCATTER_GATHER_LIST, Elements),
               "list layout");

ULONG FakeSpUnloaded;
static VOID NTAPI FakeSpUnload(PDRIVER_OBJECT DriverObject)
{
    (void)DriverObject;
    FakeSpUnloaded++;
}

static ULONG NTAPI Fake_StorPortInitialize(PVOID Argument1, PVOID Argument2, PHW_INITIALIZATION_DATA d,
                                           PVOID Unused)
{
    ((PDRIVER_OBJECT)Argument1)->DriverUnload = FakeSpUnload; /* StorPort's RaDriverUnload */
    (void)Argument2;
    (void)Unused;
    FakeSpFindAdapter = d->HwFindAdapter; /* StorPort copies what it needs */
    FakeSpHwInitialize = d->HwInitialize;
    FakeSpStartIo = d->HwStartIo;
    FakeSpInterrupt = d->HwInterrupt;
    FakeSpDeviceExtensionSize = d->DeviceExtensionSize;
    FakeSpSrbExtensionSize = d->SrbExtensionSize;
    return STATUS_SUCCESS;
}

static VOID NTAPI Fake_StorPortMoveMemory(PVOID WriteBuffer, PVOID ReadBuffer, ULONG Length)
{
    RtlCopyMemory(WriteBuffer, ReadBuffer, Length);
}

/* ------------------------------------------------------------------ DMA: the fake HAL's adapter */
static PDMA_ADAPTER FakeSpDma(void)
{
    static PDMA_ADAPTER adapter;
    static DEVICE_OBJECT pdo;
    if (!adapter) {
        DEVICE_DESCRIPTION dd;
        ULONG registers;
        RtlZeroMemory(&dd, sizeof(dd));
        dd.Version = DEVICE_DESCRIPTION_VERSION2;
        dd.Master = dd.ScatterGather = dd.Dma64BitAddresses = TRUE;
        dd.InterfaceType = PCIBus;
        dd.MaximumLength = 0x20000;
        adapter = IoGetDmaAdapter(&pdo, &dd, &registers);
    }
    return adapter;
}

typedef struct _FAKE_SP_BUILD {
    PpostScaterGatherExecute Routine;
    PVOID Context;
} FAKE_SP_BUILD;

static VOID NTAPI FakeSpListControl(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST Sgl,
                                    PVOID Context)
{
    FAKE_SP_BUILD *b = (FAKE_SP_BUILD *)Context;
    b->Routine((PVOID *)DeviceObject, (PVOID *)Irp, (PSTOR_SCATTER_GATHER_LIST)Sgl, b->Context);
}

static ULONG FakeSpStatus(NTSTATUS st)
{
    if (NT_SUCCESS(st)) return STOR_STATUS_SUCCESS;
    return st == STATUS_BUFFER_TOO_SMALL ? STOR_STATUS_BUFFER_TOO_SMALL : STOR_STATUS_INSUFFICIENT_RESOURCES;
}

/* The HAL runs the routine before it returns (the fake kernel's FAKE_BUILD_NOW), so the
 * context can live on the stack. StorPort refuses a build below or above DISPATCH_LEVEL. */
static ULONG FakeSpBuild(va_list *ap)
{
    static DEVICE_OBJECT port; /* the adapter's device object StorPort passes along */
    PMDL mdl = va_arg(*ap, PMDL);
    PVOID va = va_arg(*ap, PVOID);
    ULONG length = va_arg(*ap, ULONG);
    FAKE_SP_BUILD b;
    BOOLEAN write;
    PVOID buffer;
    ULONG room;
    PDMA_ADAPTER dma = FakeSpDma();
    b.Routine = va_arg(*ap, PpostScaterGatherExecute);
    b.Context = va_arg(*ap, PVOID);
    write = (BOOLEAN)va_arg(*ap, int);
    buffer = va_arg(*ap, PVOID);
    room = va_arg(*ap, ULONG);
    if (FakeIrql != DISPATCH_LEVEL) return STOR_STATUS_INVALID_IRQL;
    return FakeSpStatus(dma->DmaOperations->BuildScatterGatherList(
        dma, &port, mdl, va, length, FakeSpListControl, &b, write, buffer, room));
}

/* ------------------------------------------------------------------ the extended functions */
static PVOID FakeSpOut(PVOID *out, PVOID p)
{
    *out = p;
    return p;
}

static ULONG __cdecl Fake_StorPortExtendedFunction(STORPORT_FUNCTION_CODE code, PVOID ext, ...)
{
    va_list ap;
    ULONG st = STOR_STATUS_SUCCESS;
    (void)ext;
    va_start(ap, ext);
    if (FakeIrql > DISPATCH_LEVEL) { /* every one of these: IRQL <= DISPATCH_LEVEL */
        va_end(ap);
        return STOR_STATUS_INVALID_IRQL;
    }
    switch (code) {
    case ExtFunctionAllocatePool: {
        ULONG n = va_arg(ap, ULONG), tag = va_arg(ap, ULONG);
        PVOID *out = va_arg(ap, PVOID *);
        if (!FakeSpOut(out, ExAllocatePoolWithTag(NonPagedPoolNx, n, tag))) st = STOR_STATUS_INSUFFICIENT_RESOURCES;
        break;
    }
    case ExtFunctionFreePool: ExFreePoolWithTag(va_arg(ap, PVOID), 0); break;
    case ExtFunctionAllocateMdl: {
        PVOID va = va_arg(ap, PVOID);
        ULONG n = va_arg(ap, ULONG);
        PVOID *out = va_arg(ap, PVOID *);
        if (!FakeSpOut(out, IoAllocateMdl(va, n, FALSE, FALSE, NULL))) st = STOR_STATUS_INSUFFICIENT_RESOURCES;
        break;
    }
    case ExtFunctionFreeMdl: IoFreeMdl(va_arg(ap, PMDL)); break;
    case ExtFunctionBuildMdlForNonPagedPool: MmBuildMdlForNonPagedPool(va_arg(ap, PMDL)); break;
    case ExtFunctionBuildScatterGatherList: st = FakeSpBuild(&ap); break;
    case ExtFunctionPutScatterGatherList: {
        PSCATTER_GATHER_LIST s = va_arg(ap, PSCATTER_GATHER_LIST);
        BOOLEAN write = (BOOLEAN)va_arg(ap, int);
        if (FakeIrql != DISPATCH_LEVEL) st = STOR_STATUS_INVALID_IRQL;
        else FakeSpDma()->DmaOperations->PutScatterGatherList(FakeSpDma(), s, write);
        break;
    }
    case ExtFunctionAllocateContiguousMemorySpecifyCacheNode: {
        SIZE_T n = va_arg(ap, SIZE_T);
        PHYSICAL_ADDRESS lo = va_arg(ap, PHYSICAL_ADDRESS), hi = va_arg(ap, PHYSICAL_ADDRESS),
                         boundary = va_arg(ap, PHYSICAL_ADDRESS);
        MEMORY_CACHING_TYPE cache = (MEMORY_CACHING_TYPE)va_arg(ap, int);
        ULONG node = va_arg(ap, ULONG);
        PVOID *out = va_arg(ap, PVOID *);
        (void)node;
        if (!FakeSpOut(out, MmAllocateContiguousMemorySpecifyCache(n, lo, hi, boundary, cache)))
            st = STOR_STATUS_INSUFFICIENT_RESOURCES;
        break;
    }
    case ExtFunctionFreeContiguousMemorySpecifyCache: MmFreeContiguousMemory(va_arg(ap, PVOID)); break;
    default: st = STOR_STATUS_NOT_IMPLEMENTED; break;
    }
    va_end(ap);
    return st;
}

/* ------------------------------------------------------------------ notifications, DPCs, locks */
typedef struct _FAKE_SP_DPC {
    PSTOR_DPC Dpc;
    PVOID Extension;
    PVOID Argument1;
    PVOID Argument2;
} FAKE_SP_DPC;
static FAKE_SP_DPC FakeSpQueue[8];
static int FakeSpQueued;

int FakeSpRunDpcs(void)
{
    int i, n = FakeSpQueued;
    FakeSpQueued = 0;
    for (i = 0; i < n; i++) {
        FAKE_SP_DPC *q = &FakeSpQueue[i];
        ((PHW_DPC_ROUTINE)q->Dpc->Dpc.DeferredRoutine)(q->Dpc, q->Extension, q->Argument1, q->Argument2);
    }
    return n;
}

static VOID __cdecl Fake_StorPortNotification(SCSI_NOTIFICATION_TYPE type, PVOID ext, ...)
{
    va_list ap;
    va_start(ap, ext);
    switch ((ULONG)type) {
    case RequestComplete: (void)va_arg(ap, PSCSI_REQUEST_BLOCK); FakeSpCompleted++; break;
    case 0x1000: /* EnablePassiveInitialization */
        FakeSpPassiveInitialize = va_arg(ap, PHW_PASSIVE_INITIALIZE_ROUTINE);
        *va_arg(ap, PLONG) = TRUE;
        break;
    case 0x1001: { /* InitializeDpc */
        PSTOR_DPC dpc = va_arg(ap, PSTOR_DPC);
        dpc->Dpc.DeferredRoutine = (PVOID)va_arg(ap, PHW_DPC_ROUTINE);
        break;
    }
    case 0x1002: { /* IssueDpc */
        FAKE_SP_DPC *q = &FakeSpQueue[FakeSpQueued < 8 ? FakeSpQueued++ : 7];
        q->Dpc = va_arg(ap, PSTOR_DPC);
        q->Extension = ext;
        q->Argument1 = va_arg(ap, PVOID);
        q->Argument2 = va_arg(ap, PVOID);
        *va_arg(ap, PLONG) = TRUE;
        break;
    }
    case 0x1003: { /* AcquireSpinLock */
        STOR_SPINLOCK lock = (STOR_SPINLOCK)va_arg(ap, int);
        PSTOR_LOCK_HANDLE h;
        (void)va_arg(ap, PVOID); /* LockContext */
        h = va_arg(ap, PSTOR_LOCK_HANDLE);
        h->Lock = lock;
        h->Context.OldIrql = FakeIrql;
        if (lock == InterruptLock) FakeIrql = FakeSpDirql;
        else if (FakeIrql < DISPATCH_LEVEL) FakeIrql = DISPATCH_LEVEL;
        break;
    }
    case 0x1004: FakeIrql = va_arg(ap, PSTOR_LOCK_HANDLE)->Context.OldIrql; break; /* ReleaseSpinLock */
    default: break;
    }
    va_end(ap);
}

/* ------------------------------------------------------------------ the import table */
#define IMP(name) PVOID __imp_##name = (PVOID)Fake_##name
IMP(StorPortInitialize);
IMP(StorPortExtendedFunction);
IMP(StorPortNotification);
IMP(StorPortMoveMemory);
