/*
 * dmalint capture kit benchmark: the cost of a wrapped call, under wine, against the fake kernel
 * (tests/capture/fake_kernel.c). Run by bench/capture_cost.py.
 *
 *     capture_cost.exe N
 *
 * One source, three builds:
 *   -DBENCH_UNWRAPPED         the kit's header not included: calls go straight to the fake kernel
 *   -DDMALINT_SINK_CALLBACK   the kit, lines handed to BenchSink (copied to a static buffer)
 *   (neither)                 the kit, TraceLogging sink: the fake kernel's EtwWriteTransfer,
 *                             with FakeEtwCountOnly set (it counts the event, nothing more)
 *
 * Each operation is called as a driver calls it, N times in a tight loop (after N/10 calls of
 * warm-up, at most 100,000), timed with QueryPerformanceCounter:
 *   pool   ExAllocatePoolWithTag(NonPagedPoolNx, 256) + ExFreePoolWithTag
 *   lock   KeAcquireSpinLockRaiseToDpc + KeReleaseSpinLock
 *   align  Adapter->DmaOperations->GetDmaAlignment
 *   sgl    BuildScatterGatherList of a 3-page MDL at DISPATCH_LEVEL (the HAL runs the
 *          AdapterListControl routine before returning) + PutScatterGatherList
 *
 * Output, one record a line, `key=value` fields (`text=` takes the rest of its line):
 *   bench variant=V iterations=N warmup=W qpf=F
 *   op name=OP calls=C lines=L bytes=B ns_per_op=T ns_per_call=T/C
 *     (C: DDI calls the driver makes per iteration; L: lines the kit logged per iteration,
 *      B: their mean length, both counted in the timed loop; 0 unwrapped)
 *   sample name=OP text=LINE   (callback build: the lines of one more iteration)
 * Exit status 0, or 1 when an operation failed.
 */
#include <wdm.h>
#ifndef BENCH_UNWRAPPED
#include "dmalint_capture.h"
#endif
#include "fake_kernel.h"

int __cdecl printf(const char *, ...);
int __cdecl atoi(const char *);
__declspec(dllimport) int __stdcall QueryPerformanceCounter(LARGE_INTEGER *);
__declspec(dllimport) int __stdcall QueryPerformanceFrequency(LARGE_INTEGER *);

#ifdef BENCH_UNWRAPPED
#define BENCH_VARIANT "unwrapped"
#elif defined(DMALINT_SINK_CALLBACK)
#define BENCH_VARIANT "callback"
#elif defined(DMALINT_SINK_TRACELOGGING)
#define BENCH_VARIANT "tracelogging"
#else
#error "build with -DBENCH_UNWRAPPED, -DDMALINT_SINK_CALLBACK or the default TraceLogging sink"
#endif

#define BENCH_TAG 0x68636e42 /* 'Bnch' */
#define BENCH_DATA_BYTES (3 * PAGE_SIZE)
#define BENCH_SGL_BYTES 512

/* ------------------------------------------------------------------ the callback sink */
static ULONGLONG BenchBytes;
#ifdef DMALINT_SINK_CALLBACK
static ULONGLONG BenchLines;
static char BenchLast[DMALINT_LINE_MAX];
#define BENCH_SAMPLE_BYTES 4096
static char BenchSample[BENCH_SAMPLE_BYTES];
static unsigned BenchSampleUsed, BenchSampling;

static void BenchSink(const char *line, unsigned length, ULONGLONG seq)
{
    unsigned i;
    (void)seq;
    for (i = 0; i < length; i++) BenchLast[i] = line[i];
    BenchLast[length] = 0;
    BenchLines++;
    BenchBytes += length;
    if (BenchSampling && BenchSampleUsed + length + 1 < BENCH_SAMPLE_BYTES) {
        for (i = 0; i < length; i++) BenchSample[BenchSampleUsed + i] = line[i];
        BenchSampleUsed += length;
        BenchSample[BenchSampleUsed++] = '\n';
        BenchSample[BenchSampleUsed] = 0;
    }
}
#endif

static ULONGLONG BenchLogged(void)
{
#if defined(BENCH_UNWRAPPED)
    return 0;
#elif defined(DMALINT_SINK_CALLBACK)
    return BenchLines;
#else
    return FakeEtwEvents;
#endif
}

/* ------------------------------------------------------------------ the driver */
static DEVICE_OBJECT Fdo, Pdo;
static PDMA_ADAPTER Adapter;
static KSPIN_LOCK Lock;
static PVOID Data;
static PMDL Mdl;
static PVOID SgBuffer;
static ULONG SgSize;
static PSCATTER_GATHER_LIST Sgl;
static volatile ULONG Sink;
static int Failed;

static VOID NTAPI BenchListControl(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                   PSCATTER_GATHER_LIST ScatterGather, PVOID Context)
{
    (void)DeviceObject;
    (void)Irp;
    *(PSCATTER_GATHER_LIST *)Context = ScatterGather;
}

static int OpPool(void)
{
    PVOID p = ExAllocatePoolWithTag(NonPagedPoolNx, 256, BENCH_TAG);
    if (!p) return 0;
    ExFreePoolWithTag(p, BENCH_TAG);
    return 1;
}

static int OpLock(void)
{
    KIRQL old = KeAcquireSpinLockRaiseToDpc(&Lock);
    KeReleaseSpinLock(&Lock, old);
    return 1;
}

static int OpAlign(void)
{
    Sink = Adapter->DmaOperations->GetDmaAlignment(Adapter);
    return 1;
}

static int OpSgl(void)
{
    NTSTATUS st;
    Sgl = NULL;
    st = Adapter->DmaOperations->BuildScatterGatherList(Adapter, &Fdo, Mdl, Data, BENCH_DATA_BYTES,
                                                        BenchListControl, &Sgl, FALSE, SgBuffer,
                                                        BENCH_SGL_BYTES);
    if (!NT_SUCCESS(st) || !Sgl) return 0;
    Adapter->DmaOperations->PutScatterGatherList(Adapter, Sgl, FALSE);
    return 1;
}

typedef struct _BENCH_OP {
    const char *Name;
    ULONG Calls; /* DDI calls of one iteration */
    KIRQL Irql;  /* the caller's */
    int (*Run)(void);
} BENCH_OP;

static const BENCH_OP Ops[] = {
    {"pool", 2, PASSIVE_LEVEL, OpPool},
    {"lock", 2, PASSIVE_LEVEL, OpLock},
    {"align", 1, PASSIVE_LEVEL, OpAlign},
    {"sgl", 2, DISPATCH_LEVEL, OpSgl},
};

static int Setup(void)
{
    static DEVICE_DESCRIPTION dd = {.Version = DEVICE_DESCRIPTION_VERSION2, .Master = TRUE, .ScatterGather = TRUE,
                                    .Dma64BitAddresses = TRUE, .InterfaceType = PCIBus, .MaximumLength = 0x10000};
    ULONG mapRegisters = 0, regs = 0;
#ifndef BENCH_UNWRAPPED
    DmalintGetIrqlHook = FakeGetIrql;
    DmalintRaiseIrqlHook = FakeRaiseIrql;
    DmalintLowerIrqlHook = FakeLowerIrql;
#endif
#ifdef DMALINT_SINK_CALLBACK
    DmalintLineSink = BenchSink;
#endif
    FakeEtwCountOnly = 1; /* no dump file, whatever DMALINT_ETW_DUMP says */
    FakeSetup();
    FakeCpu = 0;
    FakeTid = 0x40;
    FakeIrql = PASSIVE_LEVEL;
    Adapter = IoGetDmaAdapter(&Pdo, &dd, &mapRegisters);
    if (!Adapter) return 0;
    KeInitializeSpinLock(&Lock);
    SgBuffer = ExAllocatePoolWithTag(NonPagedPoolNx, BENCH_SGL_BYTES, BENCH_TAG);
    Data = ExAllocatePoolWithTag(NonPagedPoolNx, BENCH_DATA_BYTES, BENCH_TAG);
    if (!SgBuffer || !Data) return 0;
    Mdl = IoAllocateMdl(Data, BENCH_DATA_BYTES, FALSE, FALSE, NULL);
    if (!Mdl) return 0;
    MmBuildMdlForNonPagedPool(Mdl);
    if (!NT_SUCCESS(Adapter->DmaOperations->CalculateScatterGatherList(Adapter, Mdl, Data,
                                                                       BENCH_DATA_BYTES, &SgSize,
                                                                       &regs)) ||
        SgSize > BENCH_SGL_BYTES)
        return 0;
    return 1;
}

static void Teardown(void)
{
    IoFreeMdl(Mdl);
    ExFreePoolWithTag(Data, BENCH_TAG);
    ExFreePoolWithTag(SgBuffer, BENCH_TAG);
    Adapter->DmaOperations->PutDmaAdapter(Adapter);
#ifndef BENCH_UNWRAPPED
    DmalintShutdown();
#endif
}

static void Measure(const BENCH_OP *op, long iterations, long warmup, double qpf)
{
    LARGE_INTEGER t0, t1;
    ULONGLONG lines, bytes;
    double ns;
    long i;
    int ok = 1;
    FakeIrql = op->Irql;
    for (i = 0; i < warmup; i++) ok &= op->Run();
    lines = BenchLogged();
    bytes = BenchBytes;
    QueryPerformanceCounter(&t0);
    for (i = 0; i < iterations; i++) ok &= op->Run();
    QueryPerformanceCounter(&t1);
    FakeIrql = PASSIVE_LEVEL;
    if (!ok) Failed = 1;
    lines = BenchLogged() - lines;
    bytes = BenchBytes - bytes;
    ns = (double)(t1.QuadPart - t0.QuadPart) * 1e9 / qpf / (double)iterations;
    printf("op name=%s calls=%lu lines=%.3f bytes=%.1f ns_per_op=%.3f ns_per_call=%.3f%s\n", op->Name,
           (unsigned long)op->Calls, (double)lines / (double)iterations,
           lines ? (double)bytes / (double)lines : 0.0, ns, ns / op->Calls, ok ? "" : " failed=1");
}

#ifdef DMALINT_SINK_CALLBACK
static void Sample(const BENCH_OP *op)
{
    char *line = BenchSample, *end;
    BenchSampleUsed = 0;
    BenchSample[0] = 0;
    BenchSampling = 1;
    FakeIrql = op->Irql;
    op->Run();
    FakeIrql = PASSIVE_LEVEL;
    BenchSampling = 0;
    for (; *line; line = end + 1) {
        for (end = line; *end != '\n'; end++) {
        }
        *end = 0;
        printf("sample name=%s text=%s\n", op->Name, line);
    }
}
#endif

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atoi(argv[1]) : 100000, warmup;
    LARGE_INTEGER f;
    unsigned i;
    if (iterations < 1) {
        printf("usage: capture_cost.exe ITERATIONS (at least 1)\n");
        return 2;
    }
    warmup = iterations / 10 > 100000 ? 100000 : iterations / 10;
    QueryPerformanceFrequency(&f);
    if (!Setup()) {
        printf("setup failed\n");
        return 1;
    }
    printf("bench variant=%s iterations=%ld warmup=%ld qpf=%.0f\n", BENCH_VARIANT, iterations, warmup,
           (double)f.QuadPart);
    for (i = 0; i < sizeof(Ops) / sizeof(Ops[0]); i++) Measure(&Ops[i], iterations, warmup, (double)f.QuadPart);
#ifdef DMALINT_SINK_CALLBACK
    for (i = 0; i < sizeof(Ops) / sizeof(Ops[0]); i++) Sample(&Ops[i]);
#endif
    Teardown();
    return Failed ? 1 : 0;
}
