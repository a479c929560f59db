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
#ifndef FAKE_KERNEL_H
#define FAKE_KERNEL_H

/* Harness-set machine state. */
extern ULONG FakeCpu;
extern ULONG FakeTid;
extern KIRQL FakeIrql;

enum { FAKE_BUILD_NOW = 0, FAKE_BUILD_FAIL = 1, FAKE_BUILD_DEFER = 2 };
extern int FakeBuildMode;   /* for the next builds */
extern int FakeTableVersion; /* 1, 2 or 3: which DMA_OPERATIONS the fake HAL hands out */
extern int FakePoolFailTag;  /* ExAllocatePoolWithTag with this tag fails (0: none) */
extern ULONGLONG FakeEtwEvents; /* events EtwWriteTransfer saw */
extern int FakeEtwCountOnly;    /* 1: count, do not dump */
extern LONG FakePoolLive;       /* blocks allocated and not freed */
extern int FakeBadAdapter;      /* v3 operations handed an adapter that is not the HAL's */
extern ULONG FakeFlushDmaBufferCalls; /* FlushDmaBuffer calls whose arguments arrived intact */

KIRQL FakeGetIrql(void);
KIRQL FakeRaiseIrql(KIRQL NewIrql);
VOID FakeLowerIrql(KIRQL NewIrql);
int FakeRunDeferred(void); /* runs queued execution routines; returns how many */
void FakeSetup(void);
LONGLONG FakeQpc(void);
LONGLONG FakeQpf(void);
int FakePrintf(const char *fmt, ...);
int FakePutLine(const char *line, unsigned length);

#endif
