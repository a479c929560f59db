/*
 * dmalint capture kit: shared core implementation.
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
#ifndef DMALINT_CORE_NO_INCLUDE
#include <wdm.h>
#endif
#include "dmalint_core.h"

#ifndef DMALINT_NO_IRQL
static KIRQL DmalintDefaultGetIrql(void) { return KeGetCurrentIrql(); }
DMALINT_GET_IRQL DmalintGetIrqlHook = DmalintDefaultGetIrql;
#endif
#ifdef DMALINT_SINK_CALLBACK
DMALINT_LINE_SINK DmalintLineSink;
#endif

static volatile LONG64 DmalintSeqCounter;
static volatile LONG DmalintStarted; /* 0 not yet, 1 writing @driver, 2 done */

/* ---------------------------------------------------------------- sinks */
#ifdef DMALINT_SINK_TRACELOGGING
/* Provider Dmalint.Capture {48c82022-b14f-56be-1364-624fff462dca} (EventSource name hash). */
static const GUID DmalintProviderGuid = {
    0x48c82022, 0xb14f, 0x56be, {0x13, 0x64, 0x62, 0x4f, 0xff, 0x46, 0x2d, 0xca}};
/* Provider traits: UINT16 size, name, NUL (no traits). */
static const UCHAR DmalintProviderTraits[18] = {
    18, 0, 'D', 'm', 'a', 'l', 'i', 'n', 't', '.', 'C', 'a', 'p', 't', 'u', 'r', 'e', 0};
/* Event metadata: UINT16 size, tags 0, "Line", then fields
 * "Seq" TlgInUINT64 (10), "Line" TlgInCOUNTEDANSISTRING (23) | 0x80, TlgOutUTF8 (35). */
static const UCHAR DmalintEventMetadata[20] = {
    20, 0, 0, 'L', 'i', 'n', 'e', 0, 'S', 'e', 'q', 0, 10, 'L', 'i', 'n', 'e', 0, 23 | 0x80, 35};
static const EVENT_DESCRIPTOR DmalintLineEvent = {0, 0, 11, 5, 0, 0, 0x1};
static REGHANDLE DmalintRegHandle;
static volatile LONG DmalintEtwState; /* 0 not registered, 1 registering, 2 ready, 3 failed */

static int DmalintEtwReady(void)
{
    LONG state = DmalintEtwState;
    if (state == 2) return 1;
    if (state == 3) return 0;
    if (InterlockedCompareExchange(&DmalintEtwState, 1, 0) == 0) {
        NTSTATUS st = EtwRegister(&DmalintProviderGuid, NULL, NULL, &DmalintRegHandle);
        InterlockedExchange(&DmalintEtwState, NT_SUCCESS(st) ? 2 : 3);
    } else {
        while (DmalintEtwState == 1) YieldProcessor();
    }
    return DmalintEtwState == 2;
}

static void DmalintSinkWrite(const char *line, unsigned length, ULONGLONG seq)
{
    EVENT_DATA_DESCRIPTOR d[5];
    USHORT count = (USHORT)length;
    if (!DmalintEtwReady()) return;
    d[0].Ptr = (ULONGLONG)(ULONG_PTR)DmalintProviderTraits;
    d[0].Size = sizeof(DmalintProviderTraits);
    d[0].Reserved = 2; /* EVENT_DATA_DESCRIPTOR_TYPE_PROVIDER_METADATA */
    d[1].Ptr = (ULONGLONG)(ULONG_PTR)DmalintEventMetadata;
    d[1].Size = sizeof(DmalintEventMetadata);
    d[1].Reserved = 1; /* EVENT_DATA_DESCRIPTOR_TYPE_EVENT_METADATA */
    d[2].Ptr = (ULONGLONG)(ULONG_PTR)&seq;
    d[2].Size = sizeof(seq);
    d[2].Reserved = 0;
    d[3].Ptr = (ULONGLONG)(ULONG_PTR)&count;
    d[3].Size = sizeof(count);
    d[3].Reserved = 0;
    d[4].Ptr = (ULONGLONG)(ULONG_PTR)line;
    d[4].Size = length;
    d[4].Reserved = 0;
    EtwWriteTransfer(DmalintRegHandle, &DmalintLineEvent, NULL, NULL, 5, d);
}

void DmalintInitialize(void) { (void)DmalintEtwReady(); }
void DmalintShutdown(void)
{
    if (InterlockedCompareExchange(&DmalintEtwState, 0, 2) == 2) EtwUnregister(DmalintRegHandle);
}
#elif defined(DMALINT_SINK_DBGPRINT)
static void DmalintSinkWrite(const char *line, unsigned length, ULONGLONG seq)
{
    (void)length;
    (void)seq;
    DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_INFO_LEVEL, "%s\n", line);
}
void DmalintInitialize(void) {}
void DmalintShutdown(void) {}
#else
static void DmalintSinkWrite(const char *line, unsigned length, ULONGLONG seq)
{
    DMALINT_LINE_SINK sink = DmalintLineSink;
    if (sink) sink(line, length, seq);
}
void DmalintInitialize(void) {}
void DmalintShutdown(void) {}
#endif

/* ---------------------------------------------------------------- formatter */
void DmalintPutN(DMALINT_LINE *L, const char *s, unsigned n)
{
    unsigned i;
    if (L->Overflow) return;
    if (L->Length + n > DMALINT_LINE_MAX - 1) { /* keep one byte for the NUL */
        L->Overflow = 1;
        return;
    }
    for (i = 0; i < n; i++) L->Text[L->Length + i] = s[i];
    L->Length += n;
}

void DmalintPut(DMALINT_LINE *L, const char *s)
{
    unsigned n = 0;
    while (s[n]) n++;
    DmalintPutN(L, s, n);
}

static void DmalintPutDec(DMALINT_LINE *L, ULONGLONG v)
{
    char b[24];
    unsigned i = sizeof(b);
    do {
        b[--i] = (char)('0' + (v % 10));
        v /= 10;
    } while (v);
    DmalintPutN(L, b + i, (unsigned)sizeof(b) - i);
}

void DmalintPutU(DMALINT_LINE *L, ULONGLONG v)
{
    static const char digits[] = "0123456789abcdef";
    char b[20];
    unsigned i = sizeof(b);
    if (v < 10) {
        char c = (char)('0' + v);
        DmalintPutN(L, &c, 1);
        return;
    }
    while (v) {
        b[--i] = digits[v & 0xf];
        v >>= 4;
    }
    b[--i] = 'x';
    b[--i] = '0';
    DmalintPutN(L, b + i, (unsigned)sizeof(b) - i);
}

void DmalintPutPtr(DMALINT_LINE *L, const void *p)
{
    if (!p) DmalintPut(L, "NULL");
    else DmalintPutU(L, (ULONGLONG)(ULONG_PTR)p);
}

void DmalintPutBool(DMALINT_LINE *L, int b) { DmalintPut(L, b ? "TRUE" : "FALSE"); }

void DmalintPutString(DMALINT_LINE *L, const char *s)
{
    DmalintPutN(L, "\"", 1);
    for (; *s; s++) {
        char c = *s == '"' ? '\'' : (*s == '\\' ? '/' : *s);
        DmalintPutN(L, &c, 1);
    }
    DmalintPutN(L, "\"", 1);
}

void DmalintPutIrql(DMALINT_LINE *L, ULONG irql)
{
    if (irql == 0) DmalintPut(L, "PASSIVE_LEVEL");
    else if (irql == 1) DmalintPut(L, "APC_LEVEL");
    else if (irql == 2) DmalintPut(L, "DISPATCH_LEVEL");
    else DmalintPutDec(L, irql);
}

const char *DmalintStatusName(LONG status)
{
    switch ((ULONG)status) {
    case 0x00000000UL: return "STATUS_SUCCESS";
    case 0xC000009AUL: return "STATUS_INSUFFICIENT_RESOURCES";
    case 0xC0000023UL: return "STATUS_BUFFER_TOO_SMALL";
    case 0xC000000DUL: return "STATUS_INVALID_PARAMETER";
    case 0xC00000BBUL: return "STATUS_NOT_SUPPORTED";
    case 0xC0000001UL: return "STATUS_UNSUCCESSFUL";
    default: return NULL;
    }
}

void DmalintPutStatus(DMALINT_LINE *L, LONG status)
{
    const char *name = DmalintStatusName(status);
    if (name) DmalintPut(L, name);
    else DmalintPutU(L, (ULONG)status);
}

const char *DmalintPoolTypeName(ULONG type)
{
    switch (type) {
    case 0: return "NonPagedPool";
    case 1: return "PagedPool";
    case 2: return "NonPagedPoolMustSucceed";
    case 4: return "NonPagedPoolCacheAligned";
    case 5: return "PagedPoolCacheAligned";
    case 6: return "NonPagedPoolCacheAlignedMustS";
    case 32: return "NonPagedPoolSession";
    case 33: return "PagedPoolSession";
    case 512: return "NonPagedPoolNx";
    case 516: return "NonPagedPoolNxCacheAligned";
    case 544: return "NonPagedPoolSessionNx";
    default: return NULL;
    }
}

const char *DmalintDeviceDescriptionVersionName(ULONG v)
{
    switch (v) {
    case 0: return "DEVICE_DESCRIPTION_VERSION";
    case 1: return "DEVICE_DESCRIPTION_VERSION1";
    case 2: return "DEVICE_DESCRIPTION_VERSION2";
    case 3: return "DEVICE_DESCRIPTION_VERSION3";
    default: return NULL;
    }
}

const char *DmalintAllocationActionName(ULONG action)
{
    switch (action) {
    case 1: return "KeepObject";
    case 2: return "DeallocateObject";
    case 3: return "DeallocateObjectKeepRegisters";
    default: return NULL;
    }
}

void DmalintOpen(DMALINT_LINE *L, const char *verb, const char *name)
{
    DmalintPut(L, verb);
    DmalintPut(L, name);
    DmalintPutN(L, "(", 1);
    L->Comma = 0;
}

void DmalintClose(DMALINT_LINE *L) { DmalintPutN(L, ")", 1); }

void DmalintArgName(DMALINT_LINE *L, const char *name, int out)
{
    if (L->Comma) DmalintPutN(L, ", ", 2);
    L->Comma = 1;
    DmalintPut(L, name);
    DmalintPut(L, out ? "=>" : "=");
}

void DmalintResult(DMALINT_LINE *L) { DmalintPutN(L, " -> ", 4); }

/* ---------------------------------------------------------------- records */
static void DmalintEmit(DMALINT_LINE *L)
{
    L->Text[L->Length] = 0;
    DmalintSinkWrite(L->Text, L->Length, L->Seq);
}

static void DmalintEnsureStarted(void)
{
    if (DmalintStarted == 2) return;
    if (InterlockedCompareExchange(&DmalintStarted, 1, 0) == 0) {
        DMALINT_LINE L;
        L.Seq = (ULONGLONG)InterlockedIncrement64(&DmalintSeqCounter);
        L.Length = L.Prefix = L.Overflow = L.Comma = 0;
        DmalintPut(&L, "@driver name=");
        DmalintPutString(&L, DMALINT_DRIVER_NAME);
        DmalintEmit(&L);
        InterlockedExchange(&DmalintStarted, 2);
    } else {
        while (DmalintStarted != 2) YieldProcessor();
    }
}

static void DmalintBeginCommon(DMALINT_LINE *L, ULONG irql)
{
    DmalintEnsureStarted();
    L->Seq = (ULONGLONG)InterlockedIncrement64(&DmalintSeqCounter);
    L->Length = L->Overflow = L->Comma = 0;
    DmalintPut(L, "seq=");
    DmalintPutDec(L, L->Seq);
    DmalintPut(L, " cpu=");
    DmalintPutDec(L, KeGetCurrentProcessorNumberEx(NULL));
    DmalintPut(L, " tid=");
    DmalintPutDec(L, (ULONGLONG)(ULONG_PTR)PsGetCurrentThreadId());
#ifndef DMALINT_NO_IRQL
    DmalintPut(L, " irql=");
    DmalintPutIrql(L, irql);
#else
    (void)irql;
#endif
    DmalintPutN(L, " ", 1);
    L->Prefix = L->Length;
}

void DmalintBegin(DMALINT_LINE *L)
{
#ifndef DMALINT_NO_IRQL
    DmalintBeginCommon(L, DmalintGetIrqlHook());
#else
    DmalintBeginCommon(L, 0);
#endif
}

#ifndef DMALINT_NO_IRQL
void DmalintBeginAt(DMALINT_LINE *L, ULONG irql) { DmalintBeginCommon(L, irql); }
#endif

void DmalintEnd(DMALINT_LINE *L)
{
    if (L->Overflow) {
        L->Overflow = 0;
        L->Length = L->Prefix;
        DmalintPut(L, "lost records=1 reason=\"line longer than DMALINT_LINE_MAX (1024 bytes)\"");
    }
    DmalintEmit(L);
}

void DmalintLogLost(ULONG records, const char *reason)
{
    DMALINT_LINE L;
    DmalintBegin(&L);
    DmalintPut(&L, "lost records=");
    DmalintPutU(&L, records);
    DmalintPut(&L, " reason=");
    DmalintPutString(&L, reason);
    DmalintEnd(&L);
}

void DmalintLogRoutine(const char *verb, const char *role)
{
    DMALINT_LINE L;
    DmalintBegin(&L);
    DmalintPut(&L, verb);
    DmalintPut(&L, role);
    DmalintEnd(&L);
}

void DmalintLogMem(const char *dir, const void *va, ULONGLONG len)
{
    DMALINT_LINE L;
    DmalintBegin(&L);
    DmalintPut(&L, "mem ");
    DmalintPut(&L, dir);
    DmalintPutN(&L, " ", 1);
    DmalintPutPtr(&L, va);
    DmalintPutN(&L, " ", 1);
    DmalintPutU(&L, len);
    DmalintEnd(&L);
}

void DmalintLogCallback(const char *role, unsigned count, const char *const *names,
                        const void *const *values)
{
    DMALINT_LINE L;
    unsigned i;
    DmalintBegin(&L);
    DmalintOpen(&L, "callback ", role);
    for (i = 0; i < count; i++) {
        DMALINT_ARG a = DMALINT_PTR(names[i], values[i]);
        DmalintPutArg(&L, &a);
    }
    DmalintClose(&L);
    DmalintEnd(&L);
}

void DmalintPutArgValue(DMALINT_LINE *L, const DMALINT_ARG *a)
{
    switch (a->Kind) {
    case DMALINT_KIND_PTR: DmalintPutPtr(L, (const void *)(ULONG_PTR)a->Value); break;
    case DMALINT_KIND_BOOL: DmalintPutBool(L, a->Value != 0); break;
    case DMALINT_KIND_SYM:
        if (a->Sym) DmalintPut(L, a->Sym);
        else DmalintPutU(L, a->Value);
        break;
    case DMALINT_KIND_IRQL: DmalintPutIrql(L, (ULONG)a->Value); break;
    case DMALINT_KIND_STATUS: DmalintPutStatus(L, (LONG)(ULONG)a->Value); break;
    default: DmalintPutU(L, a->Value); break;
    }
}

void DmalintPutArg(DMALINT_LINE *L, const DMALINT_ARG *a)
{
    DmalintArgName(L, a->Name, a->Out);
    DmalintPutArgValue(L, a);
}

void DmalintLogCall(ULONG at, const char *verb, const char *name, const DMALINT_ARG *args,
                    unsigned count, const DMALINT_ARG *result)
{
    DMALINT_LINE L;
    unsigned i;
#ifndef DMALINT_NO_IRQL
    if (at != DMALINT_IRQL_NOW) DmalintBeginAt(&L, at);
    else DmalintBegin(&L);
#else
    (void)at;
    DmalintBegin(&L);
#endif
    DmalintOpen(&L, verb, name);
    for (i = 0; i < count && !L.Overflow; i++) DmalintPutArg(&L, &args[i]);
    DmalintClose(&L);
    if (result) {
        DmalintResult(&L);
        DmalintPutArgValue(&L, result);
    }
    DmalintEnd(&L);
}

void DmalintLogDoneBool(const char *role, int value)
{
    DMALINT_LINE L;
    DmalintBegin(&L);
    DmalintPut(&L, "done ");
    DmalintPut(&L, role);
    DmalintResult(&L);
    DmalintPutBool(&L, value);
    DmalintEnd(&L);
}

void DmalintLogMdlChain(PMDL Mdl)
{
    for (; Mdl; Mdl = Mdl->Next) {
        DMALINT_LINE L;
        PVOID va = MmGetMdlVirtualAddress(Mdl);
        ULONG bytes = MmGetMdlByteCount(Mdl);
        ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, bytes);
        PPFN_NUMBER pfn = MmGetMdlPfnArray(Mdl);
        ULONG i;
        DmalintBegin(&L);
        DmalintPut(&L, "mdl ");
        DmalintPutPtr(&L, Mdl);
        DmalintPut(&L, " va=");
        DmalintPutPtr(&L, va);
        DmalintPut(&L, " offset=");
        DmalintPutU(&L, MmGetMdlByteOffset(Mdl));
        DmalintPut(&L, " bytes=");
        DmalintPutU(&L, bytes);
        DmalintPut(&L, " pfns=[");
        for (i = 0; i < pages && !L.Overflow; i++) {
            if (i) DmalintPutN(&L, ", ", 2);
            DmalintPutU(&L, pfn[i]);
        }
        DmalintPut(&L, "]");
        if (Mdl->Next) {
            DmalintPut(&L, " next=");
            DmalintPutPtr(&L, Mdl->Next);
        }
        DmalintEnd(&L);
    }
}

void DmalintLogSgl(const SCATTER_GATHER_LIST *Sgl)
{
    DMALINT_LINE L;
    ULONG i;
    if (!Sgl) return;
    DmalintBegin(&L);
    DmalintPut(&L, "sgl ");
    DmalintPutPtr(&L, Sgl);
    DmalintPut(&L, " [");
    for (i = 0; i < Sgl->NumberOfElements && !L.Overflow; i++) {
        if (i) DmalintPutN(&L, ", ", 2);
        DmalintPutU(&L, (ULONGLONG)Sgl->Elements[i].Address.QuadPart);
        DmalintPutN(&L, ":", 1);
        DmalintPutU(&L, Sgl->Elements[i].Length);
    }
    DmalintPut(&L, "]");
    DmalintEnd(&L);
}

void DmalintLeave(const char *name, const DMALINT_ARG *status, const DMALINT_ARG *out)
{
    DMALINT_LINE L;
    DmalintBegin(&L);
    DmalintPut(&L, "leave ");
    DmalintPut(&L, name);
    DmalintResult(&L);
    DmalintPutArgValue(&L, status);
    if (out) {
        DmalintPutN(&L, " (", 2);
        L.Comma = 0;
        DmalintPutArg(&L, out);
        DmalintClose(&L);
    }
    DmalintEnd(&L);
}
