/*
 * dmalint capture kit: test fake kernel: the imports of the kit and the samples, scripted, for user mode under wine.
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
#include <stdarg.h>
#include "dmalint_capture.h"
#include "fake_kernel.h"

/* The few C runtime and kernel32 functions used (their headers clash with wdm.h). */
typedef struct _iobuf FILE;
void *__cdecl malloc(size_t);
void __cdecl free(void *);
char *__cdecl getenv(const char *);
FILE *__cdecl fopen(const char *, const char *);
size_t __cdecl fwrite(const void *, size_t, size_t, FILE *);
int __cdecl fclose(FILE *);
int __cdecl fflush(FILE *);
int __cdecl vprintf(const char *, va_list);
__declspec(dllimport) int __stdcall QueryPerformanceCounter(LARGE_INTEGER *);
__declspec(dllimport) int __stdcall QueryPerformanceFrequency(LARGE_INTEGER *);
__declspec(dllimport) void *__stdcall VirtualAlloc(void *, SIZE_T, ULONG, ULONG);

ULONG FakeCpu;
ULONG FakeTid = 4;
KIRQL FakeIrql;
int FakeBuildMode;
int FakeTableVersion = 3;
int FakePoolFailTag;
ULONGLONG FakeEtwEvents;
int FakeEtwCountOnly;
LONG FakePoolLive;

int FakePrintf(const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vprintf(fmt, ap);
    va_end(ap);
    return r;
}

LONGLONG FakeQpc(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return t.QuadPart;
}
LONGLONG FakeQpf(void)
{
    LARGE_INTEGER t;
    QueryPerformanceFrequency(&t);
    return t.QuadPart;
}

KIRQL FakeGetIrql(void) { return FakeIrql; }
KIRQL FakeRaiseIrql(KIRQL NewIrql)
{
    KIRQL old = FakeIrql;
    FakeIrql = NewIrql;
    return old;
}
VOID FakeLowerIrql(KIRQL NewIrql) { FakeIrql = NewIrql; }

/* ------------------------------------------------------------------ pool: a bump arena
 * Deterministic simulated physical addresses: a page's PFN depends only on its offset in
 * the arena. Freeing the newest block rolls the arena back (keeps the bench bounded). */
#define ARENA_BYTES (64u << 20)
static PUCHAR Arena;
static SIZE_T ArenaUsed;

typedef struct _FAKE_BLOCK {
    SIZE_T Size;
    SIZE_T Start; /* arena offset of this header's allocation */
    ULONG Tag;
    ULONG Live;
} FAKE_BLOCK;

static PVOID FakeAlloc(SIZE_T n, ULONG tag)
{
    SIZE_T start = ArenaUsed, data;
    FAKE_BLOCK *b;
    if (!Arena) Arena = (PUCHAR)VirtualAlloc(NULL, ARENA_BYTES, 0x3000, 0x04);
    /* blocks of a page or more start on a page; smaller ones on 16 bytes */
    data = start + sizeof(FAKE_BLOCK);
    if (n >= PAGE_SIZE) data = (data + PAGE_SIZE - 1) & ~(SIZE_T)(PAGE_SIZE - 1);
    else data = (data + 15) & ~(SIZE_T)15;
    if (data + n > ARENA_BYTES) return NULL;
    b = (FAKE_BLOCK *)(Arena + data - sizeof(FAKE_BLOCK));
    b->Size = n;
    b->Start = start;
    b->Tag = tag;
    b->Live = 1;
    ArenaUsed = (data + n + 15) & ~(SIZE_T)15;
    FakePoolLive++;
    return Arena + data;
}

static VOID FakeFree(PVOID p)
{
    FAKE_BLOCK *b = (FAKE_BLOCK *)p - 1;
    if (!p || !b->Live) return; /* a double free is the trace's business, not a crash */
    b->Live = 0;
    FakePoolLive--;
    if ((PUCHAR)p + b->Size <= Arena + ArenaUsed &&
        (((PUCHAR)p - Arena) + b->Size + 15) / 16 * 16 == ArenaUsed)
        ArenaUsed = b->Start;
}

static ULONGLONG FakePfn(const void *va)
{
    ULONGLONG page = (ULONGLONG)((const UCHAR *)va - Arena) >> PAGE_SHIFT;
    /* runs of 4 physically adjacent pages, the runs scattered */
    ULONGLONG run = page >> 2;
    return 0x100000 + ((run * 0x9E3779B1ULL) & 0x3ffff) * 4 + (page & 3);
}

static PVOID NTAPI Fake_ExAllocatePoolWithTag(POOL_TYPE t, SIZE_T n, ULONG tag)
{
    (void)t;
    if (FakePoolFailTag && tag == (ULONG)FakePoolFailTag) return NULL;
    return FakeAlloc(n, tag);
}
static PVOID NTAPI Fake_ExAllocatePool2(POOL_FLAGS f, SIZE_T n, ULONG tag)
{
    PVOID p;
    (void)f;
    p = FakeAlloc(n, tag);
    if (p) RtlZeroMemory(p, n);
    return p;
}
static PVOID NTAPI Fake_ExAllocatePool(POOL_TYPE t, SIZE_T n) { (void)t; return FakeAlloc(n, 0); }
static VOID NTAPI Fake_ExFreePoolWithTag(PVOID p, ULONG tag) { (void)tag; FakeFree(p); }
static VOID NTAPI Fake_ExFreePool(PVOID p) { FakeFree(p); }

/* ------------------------------------------------------------------ MDLs */
static PMDL NTAPI Fake_IoAllocateMdl(PVOID va, ULONG len, BOOLEAN secondary, BOOLEAN quota, PIRP irp)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    PMDL m = (PMDL)malloc(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
    (void)secondary;
    (void)quota;
    (void)irp;
    if (!m) return NULL;
    RtlZeroMemory(m, sizeof(MDL) + pages * sizeof(PFN_NUMBER));
    m->Size = (CSHORT)(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
    m->StartVa = PAGE_ALIGN(va);
    m->ByteOffset = BYTE_OFFSET(va);
    m->ByteCount = len;
    return m;
}
static VOID NTAPI Fake_IoFreeMdl(PMDL m) { free(m); }
static VOID NTAPI Fake_MmBuildMdlForNonPagedPool(PMDL m)
{
    PVOID va = MmGetMdlVirtualAddress(m);
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, m->ByteCount), i;
    PPFN_NUMBER pfn = MmGetMdlPfnArray(m);
    for (i = 0; i < pages; i++) pfn[i] = (PFN_NUMBER)FakePfn((PUCHAR)m->StartVa + i * PAGE_SIZE);
    m->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
    m->MappedSystemVa = va;
}
static VOID NTAPI Fake_MmProbeAndLockPages(PMDL m, KPROCESSOR_MODE mode, LOCK_OPERATION op)
{
    (void)mode;
    (void)op;
    Fake_MmBuildMdlForNonPagedPool(m);
    m->MdlFlags |= MDL_PAGES_LOCKED;
}
static VOID NTAPI Fake_MmUnlockPages(PMDL m) { m->MdlFlags &= ~MDL_PAGES_LOCKED; }
static PVOID NTAPI Fake_MmMapLockedPagesSpecifyCache(PMDL m, KPROCESSOR_MODE a, MEMORY_CACHING_TYPE c,
                                                     PVOID r, ULONG b, ULONG p)
{
    (void)a; (void)c; (void)r; (void)b; (void)p;
    return MmGetMdlVirtualAddress(m);
}
static PVOID NTAPI Fake_MmAllocateContiguousMemorySpecifyCache(SIZE_T n, PHYSICAL_ADDRESS lo,
                                                               PHYSICAL_ADDRESS hi, PHYSICAL_ADDRESS b,
                                                               MEMORY_CACHING_TYPE c)
{
    (void)lo; (void)hi; (void)b; (void)c;
    return FakeAlloc(n, 0);
}
static VOID NTAPI Fake_MmFreeContiguousMemory(PVOID p) { FakeFree(p); }

/* ------------------------------------------------------------------ locks, CPU, thread */
static KIRQL NTAPI Fake_KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK l)
{
    KIRQL old = FakeIrql;
    *l = 1;
    FakeIrql = DISPATCH_LEVEL;
    return old;
}
static VOID NTAPI Fake_KeReleaseSpinLock(PKSPIN_LOCK l, KIRQL n) { *l = 0; FakeIrql = n; }
static VOID NTAPI Fake_KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK l) { *l = 1; }
static VOID NTAPI Fake_KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK l) { *l = 0; }
static VOID NTAPI Fake_KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK l, PKLOCK_QUEUE_HANDLE h)
{
    h->LockQueue.Lock = l;
    h->OldIrql = Fake_KeAcquireSpinLockRaiseToDpc(l);
}
static VOID NTAPI Fake_KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK l, PKLOCK_QUEUE_HANDLE h)
{
    h->LockQueue.Lock = l;
    *l = 1;
}
static VOID NTAPI Fake_KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE h)
{
    Fake_KeReleaseSpinLock(h->LockQueue.Lock, h->OldIrql);
}
static VOID NTAPI Fake_KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE h)
{
    *h->LockQueue.Lock = 0;
}
static ULONG NTAPI Fake_KeGetCurrentProcessorNumberEx(PPROCESSOR_NUMBER n)
{
    if (n) {
        n->Group = 0;
        n->Number = (UCHAR)FakeCpu;
    }
    return FakeCpu;
}
static HANDLE NTAPI Fake_PsGetCurrentThreadId(VOID) { return (HANDLE)(ULONG_PTR)FakeTid; }

/* ------------------------------------------------------------------ the HAL's adapter */
/* The v3 table: 24 slots after the v2 ones (GetDmaAdapterInfo .. CreateCommonBufferFromMdl). */
#define FAKE_V3_SLOTS 24
typedef struct _FAKE_OPS_V3 {
    DMA_OPERATIONS V2;
    PVOID V3[FAKE_V3_SLOTS];
} FAKE_OPS_V3;
static FAKE_OPS_V3 FakeOps;
static DMA_ADAPTER FakeAdapter;
static UCHAR FakeMapRegisters[64];

typedef struct _FAKE_PENDING {
    PDRIVER_LIST_CONTROL Routine;
    PVOID Context;
    PDEVICE_OBJECT Device;
    PSCATTER_GATHER_LIST Sgl;
} FAKE_PENDING;
static FAKE_PENDING Pending[8];
static int PendingCount;

static VOID NTAPI FakePutDmaAdapter(PDMA_ADAPTER a) { (void)a; }
static PVOID NTAPI FakeAllocateCommonBuffer(PDMA_ADAPTER a, ULONG len, PPHYSICAL_ADDRESS la, BOOLEAN c)
{
    PVOID va = FakeAlloc(len < PAGE_SIZE ? PAGE_SIZE : len, 0);
    (void)a; (void)c;
    if (va) la->QuadPart = (LONGLONG)(FakePfn(va) << PAGE_SHIFT);
    return va;
}
static VOID NTAPI FakeFreeCommonBuffer(PDMA_ADAPTER a, ULONG len, PHYSICAL_ADDRESS la, PVOID va, BOOLEAN c)
{
    (void)a; (void)len; (void)la; (void)c;
    FakeFree(va);
}
static NTSTATUS NTAPI FakeAllocateAdapterChannel(PDMA_ADAPTER a, PDEVICE_OBJECT d, ULONG n,
                                                 PDRIVER_CONTROL routine, PVOID ctx)
{
    (void)a; (void)n;
    routine(d, NULL, FakeMapRegisters, ctx);
    return STATUS_SUCCESS;
}
static BOOLEAN NTAPI FakeFlushAdapterBuffers(PDMA_ADAPTER a, PMDL m, PVOID b, PVOID va, ULONG l, BOOLEAN w)
{
    (void)a; (void)m; (void)b; (void)va; (void)l; (void)w;
    return TRUE;
}
static VOID NTAPI FakeFreeAdapterChannel(PDMA_ADAPTER a) { (void)a; }
static VOID NTAPI FakeFreeMapRegisters(PDMA_ADAPTER a, PVOID b, ULONG n) { (void)a; (void)b; (void)n; }
static PHYSICAL_ADDRESS NTAPI FakeMapTransfer(PDMA_ADAPTER a, PMDL m, PVOID b, PVOID va, PULONG len, BOOLEAN w)
{
    PHYSICAL_ADDRESS pa;
    ULONG index = (ULONG)(((ULONG_PTR)PAGE_ALIGN(va) - (ULONG_PTR)m->StartVa) >> PAGE_SHIFT);
    ULONG room = PAGE_SIZE - BYTE_OFFSET(va);
    (void)a; (void)b; (void)w;
    pa.QuadPart = (LONGLONG)((MmGetMdlPfnArray(m)[index] << PAGE_SHIFT) + BYTE_OFFSET(va));
    if (*len > room) *len = room;
    return pa;
}
static ULONG NTAPI FakeGetDmaAlignment(PDMA_ADAPTER a) { (void)a; return 1; }
static ULONG NTAPI FakeReadDmaCounter(PDMA_ADAPTER a) { (void)a; return 0; }

static ULONG FakeSpan(PMDL m, PVOID va, ULONG len)
{
    (void)m;
    return ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
}

static NTSTATUS FakeFill(PMDL m, PVOID va, ULONG len, PSCATTER_GATHER_LIST s, ULONG room)
{
    ULONG pages = FakeSpan(m, va, len), i, n = 0;
    ULONG first = (ULONG)(((ULONG_PTR)PAGE_ALIGN(va) - (ULONG_PTR)m->StartVa) >> PAGE_SHIFT);
    ULONG offset = BYTE_OFFSET(va), left = len;
    PPFN_NUMBER pfn = MmGetMdlPfnArray(m);
    if (room < FIELD_OFFSET(SCATTER_GATHER_LIST, Elements) + pages * sizeof(SCATTER_GATHER_ELEMENT))
        return STATUS_BUFFER_TOO_SMALL;
    for (i = 0; i < pages; i++) {
        ULONG chunk = PAGE_SIZE - (i == 0 ? offset : 0);
        ULONGLONG pa = ((ULONGLONG)pfn[first + i] << PAGE_SHIFT) + (i == 0 ? offset : 0);
        if (chunk > left) chunk = left;
        if (n && (ULONGLONG)s->Elements[n - 1].Address.QuadPart + s->Elements[n - 1].Length == pa)
            s->Elements[n - 1].Length += chunk;
        else {
            s->Elements[n].Address.QuadPart = (LONGLONG)pa;
            s->Elements[n].Length = chunk;
            s->Elements[n].Reserved = 0;
            n++;
        }
        left -= chunk;
    }
    s->NumberOfElements = n;
    s->Reserved = 0;
    return STATUS_SUCCESS;
}

static NTSTATUS FakeBuild(PDEVICE_OBJECT d, PMDL m, PVOID va, ULONG len, PDRIVER_LIST_CONTROL routine,
                          PVOID ctx, PVOID buffer, ULONG room)
{
    PSCATTER_GATHER_LIST s = (PSCATTER_GATHER_LIST)buffer;
    NTSTATUS st;
    if (FakeBuildMode == FAKE_BUILD_FAIL) return STATUS_INSUFFICIENT_RESOURCES;
    st = FakeFill(m, va, len, s, room);
    if (!NT_SUCCESS(st)) return st;
    if (FakeBuildMode == FAKE_BUILD_DEFER && PendingCount < 8) {
        Pending[PendingCount].Routine = routine;
        Pending[PendingCount].Context = ctx;
        Pending[PendingCount].Device = d;
        Pending[PendingCount].Sgl = s;
        PendingCount++;
        return STATUS_SUCCESS;
    }
    {
        KIRQL old = FakeIrql; /* the HAL runs the routine at DISPATCH_LEVEL */
        if (old < DISPATCH_LEVEL) FakeIrql = DISPATCH_LEVEL;
        routine(d, NULL, s, ctx);
        FakeIrql = old;
    }
    return STATUS_SUCCESS;
}

int FakeRunDeferred(void)
{
    int i, n = PendingCount;
    for (i = 0; i < n; i++) Pending[i].Routine(Pending[i].Device, NULL, Pending[i].Sgl, Pending[i].Context);
    PendingCount = 0;
    return n;
}

static NTSTATUS NTAPI FakeGetScatterGatherList(PDMA_ADAPTER a, PDEVICE_OBJECT d, PMDL m, PVOID va, ULONG len,
                                               PDRIVER_LIST_CONTROL routine, PVOID ctx, BOOLEAN w)
{
    ULONG room = 16 + 24 * (FakeSpan(m, va, len) + 1);
    PVOID buffer = FakeAlloc(room, 0x4c476b46);
    (void)a; (void)w;
    if (!buffer) return STATUS_INSUFFICIENT_RESOURCES;
    return FakeBuild(d, m, va, len, routine, ctx, buffer, room);
}
static VOID NTAPI FakePutScatterGatherList(PDMA_ADAPTER a, PSCATTER_GATHER_LIST s, BOOLEAN w)
{
    (void)a; (void)s; (void)w;
}
static NTSTATUS NTAPI FakeCalculateScatterGatherList(PDMA_ADAPTER a, PMDL m, PVOID va, ULONG len,
                                                     PULONG size, PULONG regs)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    (void)a; (void)m;
    *size = 16 + 24 * pages;
    if (regs) *regs = pages;
    return STATUS_SUCCESS;
}
static NTSTATUS NTAPI FakeBuildScatterGatherList(PDMA_ADAPTER a, PDEVICE_OBJECT d, PMDL m, PVOID va, ULONG len,
                                                 PDRIVER_LIST_CONTROL routine, PVOID ctx, BOOLEAN w,
                                                 PVOID buffer, ULONG room)
{
    (void)a; (void)w;
    return FakeBuild(d, m, va, len, routine, ctx, buffer, room);
}
static NTSTATUS NTAPI FakeBuildMdlFromScatterGatherList(PDMA_ADAPTER a, PSCATTER_GATHER_LIST s, PMDL o, PMDL *t)
{
    (void)a; (void)s;
    *t = o;
    return STATUS_NOT_SUPPORTED;
}
/* v3: each checks it was handed the HAL's own adapter, not the kit's wrapper. */
int FakeBadAdapter;
ULONG FakeFlushDmaBufferCalls;
static void FakeCheck(PDMA_ADAPTER a)
{
    if (a != &FakeAdapter) FakeBadAdapter++;
}
static NTSTATUS NTAPI FakeV3Stub(PDMA_ADAPTER a)
{
    FakeCheck(a);
    return STATUS_NOT_SUPPORTED;
}
static NTSTATUS NTAPI FakeGetDmaAdapterInfo(PDMA_ADAPTER a, PVOID info)
{
    FakeCheck(a);
    return info ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
}
static NTSTATUS NTAPI FakeInitializeDmaTransferContext(PDMA_ADAPTER a, PVOID ctx)
{
    FakeCheck(a);
    RtlZeroMemory(ctx, 8);
    return STATUS_SUCCESS;
}
static struct {
    PDRIVER_CONTROL Routine;
    PVOID Context, TransferContext;
    PDEVICE_OBJECT Device;
} FakeChannel; /* one queued AllocateAdapterChannelEx */
static NTSTATUS NTAPI FakeAllocateAdapterChannelEx(PDMA_ADAPTER a, PDEVICE_OBJECT d, PVOID ctx, ULONG n,
                                                   ULONG flags, PDRIVER_CONTROL routine, PVOID ectx,
                                                   PVOID *base)
{
    FakeCheck(a);
    (void)n; (void)flags;
    if (!routine) {
        *base = FakeMapRegisters;
        return STATUS_SUCCESS;
    }
    if (FakeBuildMode == FAKE_BUILD_DEFER) {
        FakeChannel.Routine = routine;
        FakeChannel.Context = ectx;
        FakeChannel.TransferContext = ctx;
        FakeChannel.Device = d;
        return STATUS_SUCCESS;
    }
    routine(d, NULL, FakeMapRegisters, ectx);
    return STATUS_SUCCESS;
}
static BOOLEAN NTAPI FakeCancelAdapterChannel(PDMA_ADAPTER a, PDEVICE_OBJECT d, PVOID ctx)
{
    FakeCheck(a);
    (void)d;
    if (FakeChannel.Routine && FakeChannel.TransferContext == ctx) {
        FakeChannel.Routine = NULL;
        return TRUE;
    }
    return FALSE;
}
static NTSTATUS NTAPI FakeBuildScatterGatherListEx(PDMA_ADAPTER a, PDEVICE_OBJECT d, PVOID ctx, PMDL m,
                                                   ULONGLONG offset, ULONG len, ULONG flags,
                                                   PDRIVER_LIST_CONTROL routine, PVOID c, BOOLEAN w,
                                                   PVOID buffer, ULONG room, PVOID completion,
                                                   PVOID completion_context, PSCATTER_GATHER_LIST *list)
{
    PVOID va = (PUCHAR)MmGetMdlVirtualAddress(m) + offset;
    FakeCheck(a);
    (void)ctx; (void)flags; (void)w; (void)completion; (void)completion_context;
    if (routine) return FakeBuild(d, m, va, len, routine, c, buffer, room);
    *list = (PSCATTER_GATHER_LIST)buffer;
    return FakeFill(m, va, len, *list, room);
}
/* FlushDmaBuffer(DmaAdapter, Mdl, ReadOperation): a slot the kit forwards unlogged. */
static NTSTATUS NTAPI FakeFlushDmaBuffer(PDMA_ADAPTER a, PMDL m, BOOLEAN read)
{
    FakeCheck(a);
    if (m && read == TRUE) FakeFlushDmaBufferCalls++;
    return STATUS_SUCCESS;
}

void FakeSetup(void)
{
    int i;
    RtlZeroMemory(&FakeOps, sizeof(FakeOps));
    FakeOps.V2.PutDmaAdapter = FakePutDmaAdapter;
    FakeOps.V2.AllocateCommonBuffer = FakeAllocateCommonBuffer;
    FakeOps.V2.FreeCommonBuffer = FakeFreeCommonBuffer;
    FakeOps.V2.AllocateAdapterChannel = FakeAllocateAdapterChannel;
    FakeOps.V2.FlushAdapterBuffers = FakeFlushAdapterBuffers;
    FakeOps.V2.FreeAdapterChannel = FakeFreeAdapterChannel;
    FakeOps.V2.FreeMapRegisters = FakeFreeMapRegisters;
    FakeOps.V2.MapTransfer = FakeMapTransfer;
    FakeOps.V2.GetDmaAlignment = FakeGetDmaAlignment;
    FakeOps.V2.ReadDmaCounter = FakeReadDmaCounter;
    if (FakeTableVersion >= 2) {
        FakeOps.V2.GetScatterGatherList = FakeGetScatterGatherList;
        FakeOps.V2.PutScatterGatherList = FakePutScatterGatherList;
        FakeOps.V2.CalculateScatterGatherList = FakeCalculateScatterGatherList;
        FakeOps.V2.BuildScatterGatherList = FakeBuildScatterGatherList;
        FakeOps.V2.BuildMdlFromScatterGatherList = FakeBuildMdlFromScatterGatherList;
    }
    if (FakeTableVersion >= 3) {
        for (i = 0; i < FAKE_V3_SLOTS; i++) FakeOps.V3[i] = (PVOID)FakeV3Stub;
        FakeOps.V3[0] = (PVOID)FakeGetDmaAdapterInfo;           /* slot 15 */
        FakeOps.V3[2] = (PVOID)FakeInitializeDmaTransferContext; /* 17 */
        FakeOps.V3[4] = (PVOID)FakeAllocateAdapterChannelEx;     /* 19 */
        FakeOps.V3[6] = (PVOID)FakeCancelAdapterChannel;         /* 21 */
        FakeOps.V3[9] = (PVOID)FakeBuildScatterGatherListEx;     /* 24 */
        FakeOps.V3[14] = (PVOID)FakeFlushDmaBuffer;              /* 29 */
    }
    FakeOps.V2.Size = FakeTableVersion >= 3 ? sizeof(FakeOps)
                      : FakeTableVersion == 2 ? sizeof(DMA_OPERATIONS)
                                              : FIELD_OFFSET(DMA_OPERATIONS, GetScatterGatherList);
    FakeAdapter.Version = (USHORT)FakeTableVersion;
    FakeAdapter.Size = sizeof(DMA_ADAPTER);
    FakeAdapter.DmaOperations = &FakeOps.V2;
}

static PDMA_ADAPTER NTAPI Fake_IoGetDmaAdapter(PDEVICE_OBJECT pdo, struct _DEVICE_DESCRIPTION *dd, PULONG n)
{
    (void)pdo; (void)dd;
    if (!FakeAdapter.DmaOperations) FakeSetup();
    *n = 33;
    return &FakeAdapter;
}

/* ------------------------------------------------------------------ ETW and DbgPrint */
static FILE *EtwDump;
static NTSTATUS NTAPI Fake_EtwRegister(LPCGUID id, PETWENABLECALLBACK cb, PVOID ctx, PREGHANDLE h)
{
    (void)id; (void)cb; (void)ctx;
    *h = 0x1234;
    if (!FakeEtwCountOnly) {
        const char *path = getenv("DMALINT_ETW_DUMP");
        if (path) {
            EtwDump = fopen(path, "wb");
            if (EtwDump) fwrite("DMALDUMP", 1, 8, EtwDump);
        }
    }
    return STATUS_SUCCESS;
}
static NTSTATUS NTAPI Fake_EtwUnregister(REGHANDLE h)
{
    (void)h;
    if (EtwDump) fclose(EtwDump);
    EtwDump = NULL;
    return STATUS_SUCCESS;
}

static const GUID FakeProviderGuid = {
    0x48c82022, 0xb14f, 0x56be, {0x13, 0x64, 0x62, 0x4f, 0xff, 0x46, 0x2d, 0xca}};

static void Put(UCHAR **p, const void *src, ULONG n)
{
    RtlCopyMemory(*p, src, n);
    *p += n;
}

static NTSTATUS NTAPI Fake_EtwWriteTransfer(REGHANDLE h, PCEVENT_DESCRIPTOR d, LPCGUID a, LPCGUID r,
                                            ULONG count, PEVENT_DATA_DESCRIPTOR data)
{
    UCHAR buf[8192], *p = buf + 4;
    ULONG i, size, zero = 0, pid = 1, tid = FakeTid;
    ULONGLONG ts = FakeEtwEvents * 10; /* 1 us apart */
    (void)h; (void)a; (void)r;
    FakeEtwEvents++;
    if (!EtwDump) return STATUS_SUCCESS;
    Put(&p, &FakeCpu, 4);
    Put(&p, &pid, 4);
    Put(&p, &tid, 4);
    Put(&p, &ts, 8);
    Put(&p, &FakeProviderGuid, 16);
    Put(&p, &d->Id, 2);
    Put(&p, &d->Version, 1);
    Put(&p, &d->Channel, 1);
    Put(&p, &d->Level, 1);
    Put(&p, &d->Opcode, 1);
    Put(&p, &d->Task, 2);
    Put(&p, &d->Keyword, 8);
    Put(&p, &count, 4);
    for (i = 0; i < count; i++) {
        UCHAR type = (UCHAR)(data[i].Reserved & 0xff);
        Put(&p, &type, 1);
        Put(&p, &zero, 3);
        Put(&p, &data[i].Size, 4);
        Put(&p, (const void *)(ULONG_PTR)data[i].Ptr, data[i].Size);
    }
    size = (ULONG)(p - buf - 4);
    RtlCopyMemory(buf, &size, 4);
    fwrite(buf, 1, size + 4, EtwDump);
    fflush(EtwDump);
    return STATUS_SUCCESS;
}

static ULONG __cdecl Fake_DbgPrintEx(ULONG c, ULONG l, PCSTR fmt, ...)
{
    va_list ap;
    (void)c; (void)l;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    return 0;
}

/* ------------------------------------------------------------------ the import table */
#define IMP(name) PVOID __imp_##name = (PVOID)Fake_##name
IMP(ExAllocatePoolWithTag);
IMP(ExAllocatePool2);
IMP(ExAllocatePool);
IMP(ExFreePoolWithTag);
IMP(ExFreePool);
IMP(IoAllocateMdl);
IMP(IoFreeMdl);
IMP(MmBuildMdlForNonPagedPool);
IMP(MmProbeAndLockPages);
IMP(MmUnlockPages);
IMP(MmMapLockedPagesSpecifyCache);
IMP(MmAllocateContiguousMemorySpecifyCache);
IMP(MmFreeContiguousMemory);
IMP(KeAcquireSpinLockRaiseToDpc);
IMP(KeReleaseSpinLock);
IMP(KeAcquireSpinLockAtDpcLevel);
IMP(KeReleaseSpinLockFromDpcLevel);
IMP(KeAcquireInStackQueuedSpinLock);
IMP(KeAcquireInStackQueuedSpinLockAtDpcLevel);
IMP(KeReleaseInStackQueuedSpinLock);
IMP(KeReleaseInStackQueuedSpinLockFromDpcLevel);
IMP(KeGetCurrentProcessorNumberEx);
IMP(PsGetCurrentThreadId);
IMP(IoGetDmaAdapter);
IMP(EtwRegister);
IMP(EtwUnregister);
IMP(EtwWriteTransfer);
IMP(DbgPrintEx);
