/*
 * dmalint capture kit: test harness: plays StorPort for the StorPort sample under wine (scenario in argv[1]).
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
#include "dmalint_storport.h"
#include "fake_kernel.h"
#include "fake_storport.h"

int __cdecl strcmp(const char *, const char *);
typedef struct _iobuf FILE;
size_t __cdecl fwrite(const void *, size_t, size_t, FILE *);
int __cdecl fflush(FILE *);
FILE *__cdecl __acrt_iob_func(unsigned);

/* The sample's entry points (the rest it registers with StorPortInitialize). */
ULONG DriverEntry(PVOID DriverObject, PVOID RegistryPath);
BOOLEAN NTAPI SxBuildIo(PVOID DeviceExtension, PSCSI_REQUEST_BLOCK Srb);

#ifdef DMALINT_SINK_CALLBACK /* each line to stdout */
static void Emit(const char *line, unsigned length, ULONGLONG seq)
{
    FILE *out = __acrt_iob_func(1);
    (void)seq;
    fwrite(line, 1, length, out);
    fwrite("\n", 1, 1, out);
}
#endif

static ULONGLONG Extension[0x400]; /* the device extension, 8-byte aligned */
static DRIVER_OBJECT Driver;
static PORT_CONFIGURATION_INFORMATION Config;

typedef struct _REQUEST {
    SCSI_REQUEST_BLOCK Srb;
    UCHAR SrbExtension[0x100];
} REQUEST;
static REQUEST Requests[8];
static UCHAR Buffers[8][0x8000];

static void Run(ULONG cpu, ULONG tid, KIRQL irql)
{
    FakeCpu = cpu;
    FakeTid = tid;
    FakeIrql = irql;
}

/* StorPort hands the miniport an SRB: HwStorBuildIo, then HwStorStartIo (DISPATCH_LEVEL). */
static void Submit(ULONG cpu, int index, ULONG length, BOOLEAN write, UCHAR tag)
{
    PSCSI_REQUEST_BLOCK srb = &Requests[index].Srb;
    srb->Length = sizeof(*srb);
    srb->Function = SRB_FUNCTION_EXECUTE_SCSI;
    srb->SrbFlags = write ? SRB_FLAGS_DATA_OUT : SRB_FLAGS_DATA_IN;
    srb->DataTransferLength = length;
    srb->DataBuffer = Buffers[index];
    srb->SrbExtension = Requests[index].SrbExtension;
    srb->QueueTag = tag;
    Run(cpu, 0, DISPATCH_LEVEL);
    if (SxBuildIo(Extension, srb)) FakeSpStartIo(Extension, srb);
}

/* The device interrupts: HwStorInterrupt at DIRQL, then the DPC it queued. */
static void Interrupt(ULONG cpu)
{
    Run(cpu, 0, FakeSpDirql);
    FakeSpInterrupt(Extension);
    Run(cpu, 0, DISPATCH_LEVEL);
    FakeSpRunDpcs();
}

int main(int argc, char **argv)
{
    const char *scenario = argc > 1 ? argv[1] : "clean";
    BOOLEAN again = FALSE;
#ifdef DMALINT_SINK_CALLBACK
    DmalintLineSink = Emit;
#endif
    FakeSetup();

    Run(0, 0x10, PASSIVE_LEVEL);
    if (DriverEntry(&Driver, NULL) != STATUS_SUCCESS || !FakeSpFindAdapter) return 2;
    Config.Length = sizeof(Config);
    Config.AdapterInterfaceType = PCIBus;
    Config.MaximumTransferLength = SP_UNINITIALIZED_VALUE;
    Config.NumberOfPhysicalBreaks = SP_UNINITIALIZED_VALUE;
    Run(0, 0x10, PASSIVE_LEVEL); /* IRP_MN_START_DEVICE */
    if (FakeSpFindAdapter(Extension, NULL, NULL, "", &Config, &again) != SP_RETURN_FOUND) return 2;
    Run(0, 0x10, FakeSpDirql);
    if (!FakeSpHwInitialize(Extension) || !FakeSpPassiveInitialize) return 2;
    Run(0, 0x10, PASSIVE_LEVEL);
    FakeSpPassiveInitialize(Extension);

    /* an INQUIRY; three in flight from three CPUs; two more, the last one tagged for the plants */
    Submit(2, 0, 0x60, FALSE, 1);
    Interrupt(0);
    Submit(1, 1, 0x1000, FALSE, 2);
    Submit(3, 2, 0x8000, FALSE, 3);
    Submit(1, 3, 0x3400, TRUE, 4);
    Interrupt(0);
    if (!strcmp(scenario, "notramp")) FakePoolFailTag = DMALINT_POOL_TAG;
    Submit(2, 4, 0x6000, TRUE, 5);
    FakePoolFailTag = 0;
    Submit(3, 5, 0x4000, FALSE, 0x5a);
    Interrupt(0);

    Run(0, 0x10, PASSIVE_LEVEL); /* the driver unloads: through the kit's unload routine */
    Driver.DriverUnload(&Driver);
    fflush(__acrt_iob_func(1));
    if (!FakeSpUnloaded) return 4;
    return FakePoolLive == 0 ? 0 : 3;
}
