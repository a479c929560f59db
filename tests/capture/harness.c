/*
 * dmalint capture kit: test harness: plays the system for the samples under wine (scenario in argv[1]).
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
#include "dmalint_capture.h"
#include "fake_kernel.h"

int __cdecl strcmp(const char *, const char *);
typedef struct _iobuf FILE;
size_t __cdecl fwrite(const void *, size_t, size_t, FILE *);
int __cdecl fflush(FILE *);
FILE *__cdecl __acrt_iob_func(unsigned);
#define HSTDOUT (__acrt_iob_func(1))

/* The sample's entry points. */
ULONG CxDeviceExtensionSize(void);
NTSTATUS CxStartDevice(PDEVICE_OBJECT Fdo, PDEVICE_OBJECT Pdo);
NTSTATUS CxStartRequest(PDEVICE_OBJECT Fdo, ULONG Offset, ULONG Length, BOOLEAN Write);
NTSTATUS CxStartPacketRequest(PDEVICE_OBJECT Fdo, ULONG Length);
BOOLEAN CxInterruptService(PKINTERRUPT Interrupt, PVOID ServiceContext);
VOID CxDpcForIsr(PKDPC Dpc, PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context);
VOID CxStopDevice(PDEVICE_OBJECT Fdo);

#ifdef DMALINT_SINK_CALLBACK
static void PrintLine(const char *line, unsigned length, ULONGLONG seq)
{
    (void)seq;
    fwrite(line, 1, length, HSTDOUT);
    fwrite("\n", 1, 1, HSTDOUT);
}
#endif

static DEVICE_OBJECT Fdo, Pdo;
static UCHAR Extension[4096];
static KDPC Dpc;
static KIRQL HarnessDirql = 3;
static UCHAR Interrupt[64];

static void At(ULONG cpu, ULONG tid, KIRQL irql)
{
    FakeCpu = cpu;
    FakeTid = tid;
    FakeIrql = irql;
}

static void Complete(ULONG cpu)
{
    At(cpu, 0, HarnessDirql); /* DIRQL */
    CxInterruptService((PKINTERRUPT)Interrupt, Fdo.DeviceExtension);
    At(cpu, 0, DISPATCH_LEVEL);
    CxDpcForIsr(&Dpc, &Fdo, NULL, Fdo.DeviceExtension);
}

static void LongLine(void)
{
    DMALINT_LINE L;
    int i;
    DmalintBegin(&L);
    DmalintPut(&L, "mem write ");
    for (i = 0; i < 200; i++) DmalintPut(&L, "0123456789");
    DmalintEnd(&L);
}

/* A v3 driver path, written as a driver would (the calls go through the kit): the Ex list with
 * its routine and without, an unlogged slot the kit forwards, a cancelled channel request. */
#ifndef DEVICE_DESCRIPTION_VERSION3
#define DEVICE_DESCRIPTION_VERSION3 3 /* Windows 8 wdm.h; mingw's headers stop at 2 */
#endif
typedef struct _V3_TABLE {
    ULONG Size;
    PVOID Slot[39];
} V3_TABLE;
typedef NTSTATUS (NTAPI *V3_INFO)(PDMA_ADAPTER, PVOID);
typedef NTSTATUS (NTAPI *V3_ALLOCATE_CHANNEL_EX)(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, ULONG, ULONG,
                                                 PDRIVER_CONTROL, PVOID, PVOID *);
typedef BOOLEAN (NTAPI *V3_CANCEL_CHANNEL)(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID);
typedef NTSTATUS (NTAPI *V3_BUILD_EX)(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, PMDL, ULONGLONG, ULONG,
                                      ULONG, PDRIVER_LIST_CONTROL, PVOID, BOOLEAN, PVOID, ULONG, PVOID,
                                      PVOID, PSCATTER_GATHER_LIST *);
typedef NTSTATUS (NTAPI *V3_FLUSH_DMA_BUFFER)(PDMA_ADAPTER, PMDL, BOOLEAN);
#define V3_SLOT(a, type, n) ((type)((V3_TABLE *)(a)->DmaOperations)->Slot[n])

static PSCATTER_GATHER_LIST V3List;
static VOID NTAPI V3ListReady(PDEVICE_OBJECT d, PIRP irp, PSCATTER_GATHER_LIST sgl, PVOID ctx)
{
    (void)d; (void)irp; (void)ctx;
    V3List = sgl;
}
static IO_ALLOCATION_ACTION NTAPI V3ChannelReady(PDEVICE_OBJECT d, PIRP irp, PVOID base, PVOID ctx)
{
    (void)d; (void)irp; (void)base; (void)ctx;
    return DeallocateObject;
}

static int V3Requests(void)
{
    DEVICE_DESCRIPTION dd = {.Version = DEVICE_DESCRIPTION_VERSION3, .Master = TRUE, .ScatterGather = TRUE,
                             .Dma64BitAddresses = TRUE, .InterfaceType = PCIBus, .MaximumLength = 0x20000};
    ULONG n = 0;
    PDMA_ADAPTER a;
    PUCHAR buffer, sg;
    PMDL mdl;
    PSCATTER_GATHER_LIST list = NULL;
    UCHAR info[64], transfer[128];
    At(0, 0x40, PASSIVE_LEVEL);
    a = IoGetDmaAdapter(&Pdo, &dd, &n);
    buffer = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x2000, 'x3vD');
    sg = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, 0x100, 'g3vD');
    if (!a || !buffer || !sg) return 1;
    mdl = IoAllocateMdl(buffer + 0x100, 0x1800, FALSE, FALSE, NULL);
    if (!mdl) return 1;
    MmBuildMdlForNonPagedPool(mdl);
    if (!NT_SUCCESS(V3_SLOT(a, V3_INFO, 15)(a, info))) return 1;
    if (!NT_SUCCESS(V3_SLOT(a, V3_INFO, 17)(a, transfer))) return 1;
    At(0, 0x40, DISPATCH_LEVEL);
    if (!NT_SUCCESS(V3_SLOT(a, V3_BUILD_EX, 24)(a, &Fdo, transfer, mdl, 0, 0x1800, 0, V3ListReady, NULL,
                                                TRUE, sg, 0x100, NULL, NULL, NULL)) || !V3List)
        return 1;
    a->DmaOperations->PutScatterGatherList(a, V3List, TRUE);
    if (!NT_SUCCESS(V3_SLOT(a, V3_BUILD_EX, 24)(a, &Fdo, transfer, mdl, 0x200, 0x1000, 0, NULL, NULL,
                                                FALSE, sg, 0x100, NULL, NULL, &list)) || !list)
        return 1;
    a->DmaOperations->PutScatterGatherList(a, list, FALSE);
    if (!NT_SUCCESS(V3_SLOT(a, V3_FLUSH_DMA_BUFFER, 29)(a, mdl, TRUE))) return 1;
    FakeBuildMode = FAKE_BUILD_DEFER;
    if (!NT_SUCCESS(V3_SLOT(a, V3_ALLOCATE_CHANNEL_EX, 19)(a, &Fdo, transfer, 2, 0, V3ChannelReady, NULL,
                                                           NULL)))
        return 1;
    FakeBuildMode = FAKE_BUILD_NOW;
    if (!V3_SLOT(a, V3_CANCEL_CHANNEL, 21)(a, &Fdo, transfer)) return 1;
    At(0, 0x40, PASSIVE_LEVEL);
    IoFreeMdl(mdl);
    ExFreePoolWithTag(sg, 'g3vD');
    ExFreePoolWithTag(buffer, 'x3vD');
    a->DmaOperations->PutDmaAdapter(a);
    return FakeBadAdapter || FakeFlushDmaBufferCalls != 1 ? 4 : 0;
}

int main(int argc, char **argv)
{
    const char *scenario = argc > 1 ? argv[1] : "clean";
#ifdef DMALINT_SINK_CALLBACK
    DmalintLineSink = PrintLine;
#endif
    DmalintGetIrqlHook = FakeGetIrql;
    DmalintRaiseIrqlHook = FakeRaiseIrql;
    DmalintLowerIrqlHook = FakeLowerIrql;
    if (!strcmp(scenario, "v1")) FakeTableVersion = 1;
    if (!strcmp(scenario, "v2")) FakeTableVersion = 2;
    if (!strcmp(scenario, "v3")) FakeTableVersion = 3;
    FakeSetup();
    Fdo.DeviceExtension = Extension;
    Pdo.DeviceExtension = NULL;

    At(0, 0x10, PASSIVE_LEVEL);
    if (!NT_SUCCESS(CxStartDevice(&Fdo, &Pdo))) return 2;

    if (FakeTableVersion >= 2) {
        /* one page read, then a 3-page unaligned write and a 16-page read at offset 0x200 */
        At(0, 0x20, PASSIVE_LEVEL);
        CxStartRequest(&Fdo, 0, 0x1000, FALSE);
        Complete(2);
        At(1, 0x24, PASSIVE_LEVEL);
        CxStartRequest(&Fdo, 0x9d0, 0x3000, TRUE);
        At(3, 0x28, PASSIVE_LEVEL);
        CxStartRequest(&Fdo, 0x200, 0x10000, FALSE);
        Complete(1);
        if (!strcmp(scenario, "fail")) {
            At(2, 0x2c, PASSIVE_LEVEL);
            FakeBuildMode = FAKE_BUILD_FAIL;
            CxStartRequest(&Fdo, 0x40, 0x2000, FALSE);
            FakeBuildMode = FAKE_BUILD_NOW;
        }
        if (!strcmp(scenario, "defer")) {
            At(2, 0x2c, PASSIVE_LEVEL);
            FakeBuildMode = FAKE_BUILD_DEFER;
            CxStartRequest(&Fdo, 0x80, 0x2000, FALSE);
            FakeBuildMode = FAKE_BUILD_NOW;
            At(1, 0, DISPATCH_LEVEL); /* the HAL's DPC on another CPU */
            FakeRunDeferred();
            Complete(3);
        }
        if (!strcmp(scenario, "notramp")) {
            At(2, 0x2c, PASSIVE_LEVEL);
            FakePoolFailTag = DMALINT_POOL_TAG;
            CxStartRequest(&Fdo, 0, 0x1000, FALSE);
            FakePoolFailTag = 0;
            Complete(2);
        }
    }
    At(0, 0x30, PASSIVE_LEVEL);
    CxStartPacketRequest(&Fdo, 0x1000);
    Complete(0);

    if (!strcmp(scenario, "longline")) {
        At(0, 0x10, PASSIVE_LEVEL);
        LongLine();
    }
    if (!strcmp(scenario, "v3")) {
        int rc = V3Requests();
        if (rc) return rc;
    }
    At(0, 0x10, PASSIVE_LEVEL);
    CxStopDevice(&Fdo);
    DmalintShutdown();
    fflush(HSTDOUT);
    FakePrintf("");
    return FakePoolLive == 0 ? 0 : 3;
}
