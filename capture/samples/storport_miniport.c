/*
 * dmalint capture kit: sample: a clean StorPort miniport's DMA path, with planted defects behind PLANT_* defines.
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
/*
 * Plain WDK code: the kit adds the include below and dmalint_storport.c to the build, plus
 * the optional DMALINT_ROUTINE_* / DMALINT_MEM_* lines; no call site changes. A SAS/NVMe-style
 * HBA that double-buffers every data SRB through a private staging block it maps itself:
 * HwStorBuildIo allocates the block, its SG buffer, its MDL (and, past two pages, a
 * physically contiguous PRP list page); HwStorStartIo builds the list, the execution routine
 * posts the command; HwStorInterrupt queues the DPC, which puts the list, copies read data
 * out and frees everything. The test harness (tests/capture/harness_storport.c) plays StorPort.
 *
 * PLANT_* defines plant one defect each, on the request the harness tags SX_PLANT_TAG (its
 * last one, so that a defect leaves nothing a later request would trip over), except
 * PLANT_IRQL001, which HwStorPassiveInitializeRoutine plants.
 */
#ifndef __MINGW32__
#include <storport.h>
#endif
#include "dmalint_storport.h" /* on mingw-w64 it includes wdm.h, srb.h and storport.h itself */

#define SX_TAG_STAGE 0x67745378 /* 'xStg' */
#define SX_TAG_SGL 0x6c675378   /* 'xSgl' */
#define SX_HEADER 0x100         /* frame header in front of the payload in a staging block */
#define SX_MAX_LENGTH 0x20000
#define SX_PAGE 0x1000
#define SX_SLOTS 8
#define SX_PLANT_TAG 0x5a
#define SX_SPAN(va, len) ((ULONG)((((ULONG_PTR)(va) & (SX_PAGE - 1)) + (len) + SX_PAGE - 1) / SX_PAGE))

typedef struct _SX_REQUEST { /* the SRB extension */
    PVOID Extension;
    PSCSI_REQUEST_BLOCK Srb;
    PUCHAR Stage; /* staging block: header, then payload */
    PUCHAR Data;
    ULONG Length;
    BOOLEAN Write;
    PVOID Mdl;
    PVOID SgBuffer;
    ULONG SgLength;
    PULONGLONG PrpList; /* one contiguous page, for payloads spanning more than two pages */
    PSTOR_SCATTER_GATHER_LIST Sgl;
} SX_REQUEST;

typedef struct _SX_EXTENSION {
    STOR_DPC Dpc;
    SX_REQUEST *Active[SX_SLOTS]; /* list built, command posted */
    ULONG Done;                   /* Active slots the device completed (InterruptLock) */
    UCHAR Sq[SX_SLOTS][64];       /* submission queue entries */
    ULONG Doorbell;
} SX_EXTENSION;

#define SX_PLANTED(req) ((req)->Srb && (req)->Srb->QueueTag == SX_PLANT_TAG)

static VOID SxZero(PVOID p, ULONG n)
{
    volatile UCHAR *b = (volatile UCHAR *)p;
    while (n--) *b++ = 0;
}

/* ------------------------------------------------------------------ a request's memory */
static VOID SxRelease(SX_EXTENSION *x, SX_REQUEST *req)
{
    StorPortFreeMdl(x, req->Mdl);
    if (req->PrpList) StorPortFreeContiguousMemorySpecifyCache(x, req->PrpList, SX_PAGE, MmCached);
    StorPortFreePool(x, req->Stage);
#ifdef PLANT_POOL001
    if (SX_PLANTED(req)) StorPortFreePool(x, req->Stage); /* planted: POOL001 */
#endif
    StorPortFreePool(x, req->SgBuffer);
    req->Mdl = req->Stage = req->SgBuffer = NULL;
    req->PrpList = NULL;
}

static BOOLEAN SxPrepare(SX_EXTENSION *x, SX_REQUEST *req, PVOID source, ULONG length, BOOLEAN write)
{
    PHYSICAL_ADDRESS low, high, boundary;
    ULONG pages;
    SxZero(req, sizeof(*req));
    req->Extension = x;
    req->Length = length;
    req->Write = write;
    if (!length || length > SX_MAX_LENGTH ||
        StorPortAllocatePool(x, SX_HEADER + length, SX_TAG_STAGE, (PVOID *)&req->Stage) != STOR_STATUS_SUCCESS)
        return FALSE;
    req->Data = req->Stage + SX_HEADER;
    pages = SX_SPAN(req->Data, length);
    req->SgLength = FIELD_OFFSET(STOR_SCATTER_GATHER_LIST, List) + pages * sizeof(STOR_SCATTER_GATHER_ELEMENT);
    low.QuadPart = 0;
    high.QuadPart = -1;
    boundary.QuadPart = 0;
    if (StorPortAllocatePool(x, req->SgLength, SX_TAG_SGL, &req->SgBuffer) != STOR_STATUS_SUCCESS ||
        StorPortAllocateMdl(x, req->Data, length, &req->Mdl) != STOR_STATUS_SUCCESS ||
        StorPortBuildMdlForNonPagedPool(x, req->Mdl) != STOR_STATUS_SUCCESS ||
        (pages > 2 && StorPortAllocateContiguousMemorySpecifyCacheNode(x, SX_PAGE, low, high, boundary, MmCached,
                                                                       MM_ANY_NODE_OK, (PVOID *)&req->PrpList) !=
                          STOR_STATUS_SUCCESS)) {
        if (req->Mdl) StorPortFreeMdl(x, req->Mdl);
        if (req->SgBuffer) StorPortFreePool(x, req->SgBuffer);
        StorPortFreePool(x, req->Stage);
        return FALSE;
    }
    if (write) {
        DMALINT_MEM_WRITE(req->Data, length); /* copy in before mapping */
        StorPortMoveMemory(req->Data, source, length);
    }
    return TRUE;
}

/* ExecutionRoutine (DISPATCH_LEVEL): fill the PRP list, post the command, ring the doorbell. */
static VOID NTAPI SxListReady(PVOID *DeviceObject, PVOID *Irp, PSTOR_SCATTER_GATHER_LIST ScatterGather,
                              PVOID Context)
{
    SX_REQUEST *req = (SX_REQUEST *)Context;
    SX_EXTENSION *x = (SX_EXTENSION *)req->Extension;
    ULONG i;
    UNREFERENCED_PARAMETER(DeviceObject);
    UNREFERENCED_PARAMETER(Irp);
    req->Sgl = ScatterGather;
    if (req->PrpList) {
        DMALINT_MEM_WRITE(req->PrpList, 8 * ScatterGather->NumberOfElements);
        for (i = 0; i < ScatterGather->NumberOfElements; i++)
            req->PrpList[i] = (ULONGLONG)ScatterGather->List[i].PhysicalAddress.QuadPart;
    }
    x->Sq[x->Doorbell % SX_SLOTS][0] = (UCHAR)ScatterGather->NumberOfElements;
    x->Doorbell++;
}

static BOOLEAN SxMap(SX_EXTENSION *x, SX_REQUEST *req)
{
    if (StorPortBuildScatterGatherList(x, req->Mdl, req->Data, req->Length, SxListReady, req,
                                       req->Write, req->SgBuffer, req->SgLength) == STOR_STATUS_SUCCESS)
        return TRUE;
    SxRelease(x, req);
    return FALSE;
}

static VOID SxComplete(SX_EXTENSION *x, PSCSI_REQUEST_BLOCK srb, UCHAR status)
{
    srb->SrbStatus = status;
    StorPortNotification(RequestComplete, x, srb);
}

/* After the device is done (DPC, DpcLock held). */
static VOID SxFinish(SX_EXTENSION *x, SX_REQUEST *req)
{
#ifdef PLANT_SGL003
    if (SX_PLANTED(req) && !req->Write) DMALINT_MEM_READ(req->Data, req->Length); /* planted: SGL003 */
#endif
#ifdef PLANT_SGL001
    if (SX_PLANTED(req)) { /* planted: SGL001 (never put: what the list maps stays allocated) */
        StorPortFreeContiguousMemorySpecifyCache(x, req->PrpList, SX_PAGE, MmCached);
        SxComplete(x, req->Srb, SRB_STATUS_SUCCESS);
        return;
    }
#endif
    StorPortPutScatterGatherList(x, req->Sgl, req->Write);
#ifdef PLANT_SGL002
    if (SX_PLANTED(req)) StorPortPutScatterGatherList(x, req->Sgl, req->Write); /* planted: SGL002 */
#endif
    if (!req->Write) {
        DMALINT_MEM_READ(req->Data, req->Length); /* copy out */
        StorPortMoveMemory(req->Srb->DataBuffer, req->Data, req->Length);
    }
    SxRelease(x, req);
    SxComplete(x, req->Srb, SRB_STATUS_SUCCESS);
}

/* ------------------------------------------------------------------ the Hw* routines */
static VOID NTAPI SxDpc(PSTOR_DPC Dpc, PVOID HwDeviceExtension, PVOID SystemArgument1, PVOID SystemArgument2)
{
    SX_EXTENSION *x = (SX_EXTENSION *)HwDeviceExtension;
    STOR_LOCK_HANDLE dpcLock, interruptLock;
    ULONG done, i;
    BOOLEAN planted = FALSE;
    DMALINT_ROUTINE_ENTER(HwStorDpcRoutine, Dpc, HwDeviceExtension, SystemArgument1, SystemArgument2);
    StorPortAcquireSpinLock(x, DpcLock, Dpc, &dpcLock);
    StorPortAcquireSpinLock(x, InterruptLock, NULL, &interruptLock);
    done = x->Done;
    x->Done = 0;
    StorPortReleaseSpinLock(x, &interruptLock);
    for (i = 0; i < SX_SLOTS; i++)
        if (done & (1u << i)) {
            SX_REQUEST *req = x->Active[i];
            x->Active[i] = NULL;
            planted = planted || SX_PLANTED(req);
            SxFinish(x, req);
        }
#ifdef PLANT_LOCK003
    if (planted) { /* planted: LOCK003 (returns with the DpcLock held) */
        DMALINT_ROUTINE_LEAVE(HwStorDpcRoutine);
        return;
    }
#endif
    (void)planted;
    StorPortReleaseSpinLock(x, &dpcLock);
    DMALINT_ROUTINE_LEAVE(HwStorDpcRoutine);
}

BOOLEAN NTAPI SxBuildIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    SX_EXTENSION *x = (SX_EXTENSION *)DeviceExtension;
    SX_REQUEST *req = (SX_REQUEST *)Srb->SrbExtension;
    DMALINT_ROUTINE_ENTER(HwStorBuildIo, DeviceExtension, Srb);
    if (!SxPrepare(x, req, Srb->DataBuffer, Srb->DataTransferLength, (Srb->SrbFlags & SRB_FLAGS_DATA_OUT) != 0)) {
        SxComplete(x, Srb, SRB_STATUS_ERROR);
        DMALINT_ROUTINE_RETURN_BOOLEAN(HwStorBuildIo, FALSE);
    }
    req->Srb = Srb;
    DMALINT_ROUTINE_RETURN_BOOLEAN(HwStorBuildIo, TRUE);
}

static BOOLEAN NTAPI SxStartIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb)
{
    SX_EXTENSION *x = (SX_EXTENSION *)DeviceExtension;
    SX_REQUEST *req = (SX_REQUEST *)Srb->SrbExtension;
    ULONG slot = 0;
    DMALINT_ROUTINE_ENTER(HwStorStartIo, DeviceExtension, Srb);
    while (slot < SX_SLOTS && x->Active[slot]) slot++;
    if (slot == SX_SLOTS) {
        SxRelease(x, req);
        SxComplete(x, Srb, SRB_STATUS_BUSY);
    } else if (SxMap(x, req)) {
        x->Active[slot] = req;
    } else {
        SxComplete(x, Srb, SRB_STATUS_ERROR);
    }
    DMALINT_ROUTINE_RETURN_BOOLEAN(HwStorStartIo, TRUE);
}

static BOOLEAN NTAPI SxInterrupt(PVOID DeviceExtension)
{
    SX_EXTENSION *x = (SX_EXTENSION *)DeviceExtension;
    ULONG i;
    DMALINT_ROUTINE_ENTER(HwStorInterrupt, DeviceExtension);
    for (i = 0; i < SX_SLOTS; i++) /* the completion queue: every posted command is done */
        if (x->Active[i]) x->Done |= 1u << i;
    StorPortIssueDpc(x, &x->Dpc, NULL, NULL);
    DMALINT_ROUTINE_RETURN_BOOLEAN(HwStorInterrupt, TRUE);
}

static BOOLEAN NTAPI SxPassiveInitialize(PVOID DeviceExtension)
{
    SX_EXTENSION *x = (SX_EXTENSION *)DeviceExtension;
    DMALINT_ROUTINE_ENTER(HwStorPassiveInitializeRoutine, DeviceExtension);
    StorPortInitializeDpc(x, &x->Dpc, SxDpc);
#ifdef PLANT_IRQL001
    { /* planted: IRQL001 (the identify command is mapped here, at PASSIVE_LEVEL) */
        static SX_REQUEST identify;
        if (SxPrepare(x, &identify, NULL, SX_PAGE, FALSE) && SxMap(x, &identify)) x->Active[0] = &identify;
    }
#endif
    DMALINT_ROUTINE_RETURN_BOOLEAN(HwStorPassiveInitializeRoutine, TRUE);
}

static BOOLEAN NTAPI SxHwInitialize(PVOID DeviceExtension) /* DIRQL */
{
    return StorPortEnablePassiveInitialization(DeviceExtension, SxPassiveInitialize);
}

static ULONG NTAPI SxFindAdapter(PVOID DeviceExtension, PVOID HwContext, PVOID BusInformation,
                                 PCHAR ArgumentString, PPORT_CONFIGURATION_INFORMATION ConfigInfo, PBOOLEAN Reserved3)
{
    UNREFERENCED_PARAMETER(HwContext);
    UNREFERENCED_PARAMETER(BusInformation);
    UNREFERENCED_PARAMETER(ArgumentString);
    UNREFERENCED_PARAMETER(Reserved3);
    SxZero(DeviceExtension, sizeof(SX_EXTENSION));
    ConfigInfo->MaximumTransferLength = SX_MAX_LENGTH;
    ConfigInfo->NumberOfPhysicalBreaks = SX_MAX_LENGTH / SX_PAGE;
    ConfigInfo->ScatterGather = TRUE;
    ConfigInfo->Master = TRUE;
    ConfigInfo->Dma32BitAddresses = TRUE;
    ConfigInfo->Dma64BitAddresses = SCSI_DMA64_MINIPORT_FULL64BIT_SUPPORTED;
    ConfigInfo->NumberOfBuses = 1;
    ConfigInfo->MaximumNumberOfTargets = 1;
    return SP_RETURN_FOUND;
}

static SCSI_ADAPTER_CONTROL_STATUS NTAPI SxAdapterControl(PVOID DeviceExtension, SCSI_ADAPTER_CONTROL_TYPE ControlType,
                                                          PVOID Parameters)
{
    UNREFERENCED_PARAMETER(DeviceExtension);
    if (ControlType == ScsiQuerySupportedControlTypes) {
        PSCSI_SUPPORTED_CONTROL_TYPE_LIST list = (PSCSI_SUPPORTED_CONTROL_TYPE_LIST)Parameters;
        if (list->MaxControlType > ScsiStopAdapter) list->SupportedTypeList[ScsiStopAdapter] = TRUE;
        if (list->MaxControlType > ScsiRestartAdapter) list->SupportedTypeList[ScsiRestartAdapter] = TRUE;
    }
    return ScsiAdapterControlSuccess;
}

ULONG DriverEntry(PVOID DriverObject, PVOID RegistryPath)
{
    HW_INITIALIZATION_DATA init = {
        .HwInitializationDataSize = sizeof(HW_INITIALIZATION_DATA),
        .AdapterInterfaceType = PCIBus,
        .HwInitialize = SxHwInitialize,
        .HwStartIo = SxStartIo,
        .HwInterrupt = SxInterrupt,
        .HwFindAdapter = SxFindAdapter,
        .DeviceExtensionSize = sizeof(SX_EXTENSION),
        .SrbExtensionSize = sizeof(SX_REQUEST),
        .TaggedQueuing = TRUE,
        .MultipleRequestPerLu = TRUE,
        .HwAdapterControl = SxAdapterControl,
#ifndef DMALINT_STORPORT_OLD_HEADER /* mingw-w64's HW_INITIALIZATION_DATA is SCSI port's */
        .HwBuildIo = SxBuildIo,
#endif
    };
    return StorPortInitialize(DriverObject, RegistryPath, &init, NULL);
}
