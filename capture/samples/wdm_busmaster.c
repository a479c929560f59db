/*
 * dmalint capture kit: sample: a clean 64-bit PCI bus master (WDM), with planted defects behind PLANT_* defines.
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
/*
 * Plain WDK code: the kit adds two lines (the include below and dmalint_capture.c in the
 * build) plus the optional DMALINT_ROUTINE_* / DMALINT_MEM_* lines. Call sites unchanged.
 * The Cx* entry points are what a PnP/IRP layer would call; the test harness plays it.
 */
#include <wdm.h>
#include "dmalint_capture.h"

#define CX_TAG_DATA 0x62447843 /* 'CxDb' */
#define CX_TAG_SGL 0x67537843  /* 'CxSg' */
#define CX_SLOTS 3
#define CX_MAX_LENGTH 0x20000
#define CX_SGL_BYTES (16 + 24 * 33) /* header + worst-case 33 elements */
#define CX_RING_BYTES 0x2000

typedef struct _CX_SLOT {
    BOOLEAN Busy;
    BOOLEAN Write;
    BOOLEAN Mapped; /* the routine ran: the list is live */
    PVOID Buffer;   /* pool block */
    PVOID Data;     /* data inside it */
    ULONG Length;
    PMDL Mdl;
    PVOID SgBuffer; /* preallocated SG buffer */
    PSCATTER_GATHER_LIST Sgl;
} CX_SLOT;

typedef struct _CX_EXTENSION {
    PDEVICE_OBJECT Self;
    PDMA_ADAPTER Adapter;
    ULONG MapRegisters;
    PVOID Ring;
    PHYSICAL_ADDRESS RingLogical;
    KSPIN_LOCK Lock;
    ULONG Submitted;
    CX_SLOT Slot[CX_SLOTS];
    /* packet-based (AllocateAdapterChannel) request */
    BOOLEAN PacketBusy;
    PVOID PacketBuffer;
    PMDL PacketMdl;
    ULONG PacketLength;
    PVOID MapRegisterBase;
    ULONG PacketMapRegisters;
    PHYSICAL_ADDRESS PacketLogical;
} CX_EXTENSION;

ULONG CxDeviceExtensionSize(void) { return sizeof(CX_EXTENSION); }

static BOOLEAN CxHasScatterGather(CX_EXTENSION *x)
{
    return x->Adapter->DmaOperations->Size >=
           FIELD_OFFSET(DMA_OPERATIONS, BuildScatterGatherList) + sizeof(PVOID);
}

NTSTATUS CxStartDevice(PDEVICE_OBJECT Fdo, PDEVICE_OBJECT Pdo)
{
    CX_EXTENSION *x = (CX_EXTENSION *)Fdo->DeviceExtension;
    DEVICE_DESCRIPTION dd;
    ULONG i;

    RtlZeroMemory(x, sizeof(*x));
    x->Self = Fdo;
    RtlZeroMemory(&dd, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION2;
    dd.Master = TRUE;
    dd.ScatterGather = TRUE;
    dd.Dma64BitAddresses = TRUE;
    dd.InterfaceType = PCIBus;
    dd.MaximumLength = CX_MAX_LENGTH;
    x->Adapter = IoGetDmaAdapter(Pdo, &dd, &x->MapRegisters);
    if (!x->Adapter) return STATUS_INSUFFICIENT_RESOURCES;
    x->Ring = x->Adapter->DmaOperations->AllocateCommonBuffer(x->Adapter, CX_RING_BYTES,
                                                               &x->RingLogical, FALSE);
    if (!x->Ring) return STATUS_INSUFFICIENT_RESOURCES;
    DMALINT_MEM_WRITE(x->Ring, CX_RING_BYTES); /* RtlZeroMemory of the rings */
    RtlZeroMemory(x->Ring, CX_RING_BYTES);
    KeInitializeSpinLock(&x->Lock);
    if (CxHasScatterGather(x)) {
        for (i = 0; i < CX_SLOTS; i++) {
            x->Slot[i].SgBuffer = ExAllocatePool2(POOL_FLAG_NON_PAGED, CX_SGL_BYTES, CX_TAG_SGL);
            if (!x->Slot[i].SgBuffer) return STATUS_INSUFFICIENT_RESOURCES;
        }
    }
    return STATUS_SUCCESS;
}

/* ExecutionRoutine of BuildScatterGatherList: post the request to the submission ring. */
static VOID NTAPI CxListControl(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                PSCATTER_GATHER_LIST ScatterGather, PVOID Context)
{
    CX_SLOT *slot = (CX_SLOT *)Context;
    CX_EXTENSION *x = (CX_EXTENSION *)DeviceObject->DeviceExtension;
    PUCHAR sq = (PUCHAR)x->Ring + (x->Submitted % 32) * 0x40;
    UNREFERENCED_PARAMETER(Irp);
    slot->Sgl = ScatterGather;
    slot->Mapped = TRUE;
    DMALINT_MEM_WRITE(sq, 0x40); /* SQ entry: elements inline; doorbell */
    sq[0] = (UCHAR)ScatterGather->NumberOfElements;
    x->Submitted++;
}

/* One scatter/gather request: Length bytes at Offset inside a fresh pool block. */
NTSTATUS CxStartRequest(PDEVICE_OBJECT Fdo, ULONG Offset, ULONG Length, BOOLEAN Write)
{
    CX_EXTENSION *x = (CX_EXTENSION *)Fdo->DeviceExtension;
    CX_SLOT *slot = NULL;
    ULONG i, sgSize = 0, mapRegs = 0;
    KIRQL old;
    NTSTATUS st;

    for (i = 0; i < CX_SLOTS; i++)
        if (!x->Slot[i].Busy) {
            slot = &x->Slot[i];
            break;
        }
    if (!slot || Length > CX_MAX_LENGTH) return STATUS_INSUFFICIENT_RESOURCES;
    slot->Buffer = ExAllocatePool2(POOL_FLAG_NON_PAGED, Offset + Length, CX_TAG_DATA);
    if (!slot->Buffer) return STATUS_INSUFFICIENT_RESOURCES;
    slot->Data = (PUCHAR)slot->Buffer + Offset;
    slot->Length = Length;
    slot->Write = Write;
    slot->Mapped = FALSE;
    slot->Sgl = NULL;
    if (Write) {
        DMALINT_MEM_WRITE(slot->Data, Length);
        RtlFillMemory(slot->Data, Length, 0x5a);
    }
    slot->Mdl = IoAllocateMdl(slot->Data, Length, FALSE, FALSE, NULL);
    if (!slot->Mdl) {
        ExFreePoolWithTag(slot->Buffer, CX_TAG_DATA);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmBuildMdlForNonPagedPool(slot->Mdl);
    slot->Busy = TRUE;

#ifdef PLANT_IRQL001
    static BOOLEAN planted; /* the first build is made at PASSIVE_LEVEL */
    BOOLEAN plant = !planted;
    planted = TRUE;
    old = PASSIVE_LEVEL;
    if (!plant)
#endif
    KeAcquireSpinLock(&x->Lock, &old);
    st = x->Adapter->DmaOperations->CalculateScatterGatherList(x->Adapter, slot->Mdl, slot->Data,
                                                               Length, &sgSize, &mapRegs);
    if (NT_SUCCESS(st) && sgSize <= CX_SGL_BYTES) {
        st = x->Adapter->DmaOperations->BuildScatterGatherList( /* planted: IRQL001 */
            x->Adapter, Fdo, slot->Mdl, slot->Data, Length, CxListControl, slot, Write,
            slot->SgBuffer, CX_SGL_BYTES);
    } else if (NT_SUCCESS(st)) {
        st = STATUS_BUFFER_TOO_SMALL;
    }
#ifdef PLANT_IRQL001
    if (!plant)
#endif
    KeReleaseSpinLock(&x->Lock, old);
    if (!NT_SUCCESS(st)) {
        IoFreeMdl(slot->Mdl);
        ExFreePoolWithTag(slot->Buffer, CX_TAG_DATA);
        slot->Busy = FALSE;
    }
    return st;
}

BOOLEAN CxInterruptService(PKINTERRUPT Interrupt, PVOID ServiceContext)
{
    CX_EXTENSION *x = (CX_EXTENSION *)ServiceContext;
    DMALINT_ROUTINE_ENTER(InterruptService, Interrupt, ServiceContext);
    DMALINT_MEM_READ((PUCHAR)x->Ring + 0x800, 0x10); /* completion queue entry */
    DMALINT_ROUTINE_RETURN_BOOLEAN(InterruptService, TRUE);
}

/* ExecutionRoutine of AllocateAdapterChannel: one MapTransfer for the packet request. */
static IO_ALLOCATION_ACTION NTAPI CxAdapterControl(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                                   PVOID MapRegisterBase, PVOID Context)
{
    CX_EXTENSION *x = (CX_EXTENSION *)Context;
    ULONG length = x->PacketLength;
    UNREFERENCED_PARAMETER(DeviceObject);
    UNREFERENCED_PARAMETER(Irp);
    x->MapRegisterBase = MapRegisterBase;
    x->PacketLogical = x->Adapter->DmaOperations->MapTransfer(
        x->Adapter, x->PacketMdl, MapRegisterBase, MmGetMdlVirtualAddress(x->PacketMdl), &length,
        FALSE);
    return DeallocateObjectKeepRegisters;
}

/* A packet-based read through AllocateAdapterChannel + MapTransfer (one page). */
NTSTATUS CxStartPacketRequest(PDEVICE_OBJECT Fdo, ULONG Length)
{
    CX_EXTENSION *x = (CX_EXTENSION *)Fdo->DeviceExtension;
    KIRQL old;
    NTSTATUS st;
    x->PacketBuffer = ExAllocatePool2(POOL_FLAG_NON_PAGED, Length, CX_TAG_DATA);
    if (!x->PacketBuffer) return STATUS_INSUFFICIENT_RESOURCES;
    x->PacketLength = Length;
    x->PacketMdl = IoAllocateMdl(x->PacketBuffer, Length, FALSE, FALSE, NULL);
    if (!x->PacketMdl) {
        ExFreePoolWithTag(x->PacketBuffer, CX_TAG_DATA);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    MmBuildMdlForNonPagedPool(x->PacketMdl);
    x->PacketMapRegisters = ADDRESS_AND_SIZE_TO_SPAN_PAGES(x->PacketBuffer, Length);
    x->PacketBusy = TRUE;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    st = x->Adapter->DmaOperations->AllocateAdapterChannel(x->Adapter, Fdo, x->PacketMapRegisters,
                                                           CxAdapterControl, x);
    KeLowerIrql(old);
    if (!NT_SUCCESS(st)) {
        IoFreeMdl(x->PacketMdl);
        ExFreePoolWithTag(x->PacketBuffer, CX_TAG_DATA);
        x->PacketBusy = FALSE;
    }
    return st;
}

#if defined(PLANT_SGL001) || defined(PLANT_SGL002) || defined(PLANT_SGL003) || defined(PLANT_POOL001)
static int CxPlanted; /* each planted defect happens once, on the first completion */
#define CX_PLANT_NOW() (!CxPlanted ? (CxPlanted = 1) : 0)
#endif

static VOID CxCompleteSlot(CX_EXTENSION *x, CX_SLOT *slot)
{
#if defined(PLANT_SGL001) || defined(PLANT_SGL002) || defined(PLANT_SGL003) || defined(PLANT_POOL001)
    int plant = CX_PLANT_NOW();
#endif
#ifdef PLANT_SGL003
    if (plant && !slot->Write) DMALINT_MEM_READ(slot->Data, slot->Length); /* planted: SGL003 */
#endif
    KeAcquireSpinLockAtDpcLevel(&x->Lock);
#ifdef PLANT_SGL001
    if (!plant) /* planted: the first list is never put (reported at the IoFreeMdl below as SGL012; SGL001 folds under it) */
#endif
    x->Adapter->DmaOperations->PutScatterGatherList(x->Adapter, slot->Sgl, slot->Write);
#ifdef PLANT_SGL002
    if (plant) x->Adapter->DmaOperations->PutScatterGatherList(x->Adapter, slot->Sgl, slot->Write); /* planted: SGL002 */
#endif
    KeReleaseSpinLockFromDpcLevel(&x->Lock);
#if defined(PLANT_SGL003) || defined(PLANT_SGL001)
    if (!plant)
#endif
    if (!slot->Write) DMALINT_MEM_READ(slot->Data, slot->Length);
    IoFreeMdl(slot->Mdl);
    ExFreePoolWithTag(slot->Buffer, CX_TAG_DATA);
#ifdef PLANT_POOL001
    if (plant) ExFreePoolWithTag(slot->Buffer, CX_TAG_DATA); /* planted: POOL001 */
#endif
    slot->Busy = FALSE;
    slot->Mapped = FALSE;
    slot->Sgl = NULL;
}

VOID CxDpcForIsr(PKDPC Dpc, PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    CX_EXTENSION *x = (CX_EXTENSION *)DeviceObject->DeviceExtension;
    ULONG i;
    DMALINT_ROUTINE_ENTER(DpcForIsr, Dpc, DeviceObject, Irp, Context);
    for (i = 0; i < CX_SLOTS; i++)
        if (x->Slot[i].Busy && x->Slot[i].Mapped) CxCompleteSlot(x, &x->Slot[i]);
    if (x->PacketBusy && x->MapRegisterBase) {
        x->Adapter->DmaOperations->FlushAdapterBuffers(x->Adapter, x->PacketMdl, x->MapRegisterBase,
                                                       MmGetMdlVirtualAddress(x->PacketMdl),
                                                       x->PacketLength, FALSE);
        x->Adapter->DmaOperations->FreeMapRegisters(x->Adapter, x->MapRegisterBase,
                                                    x->PacketMapRegisters);
        DMALINT_MEM_READ(x->PacketBuffer, x->PacketLength);
        IoFreeMdl(x->PacketMdl);
        ExFreePoolWithTag(x->PacketBuffer, CX_TAG_DATA);
        x->PacketBusy = FALSE;
        x->MapRegisterBase = NULL;
#ifdef PLANT_LOCK003
        KeAcquireSpinLockAtDpcLevel(&x->Lock); /* planted: LOCK003 */
#endif
    }
    DMALINT_ROUTINE_LEAVE(DpcForIsr);
}

VOID CxStopDevice(PDEVICE_OBJECT Fdo)
{
    CX_EXTENSION *x = (CX_EXTENSION *)Fdo->DeviceExtension;
    ULONG i;
    for (i = 0; i < CX_SLOTS; i++)
        if (x->Slot[i].SgBuffer) {
            ExFreePoolWithTag(x->Slot[i].SgBuffer, CX_TAG_SGL);
            x->Slot[i].SgBuffer = NULL;
        }
    if (x->Ring)
        x->Adapter->DmaOperations->FreeCommonBuffer(x->Adapter, CX_RING_BYTES, x->RingLogical,
                                                    x->Ring, FALSE);
    x->Ring = NULL;
    x->Adapter->DmaOperations->PutDmaAdapter(x->Adapter);
    x->Adapter = NULL;
}
