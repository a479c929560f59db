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
#ifndef FAKE_STORPORT_H
#define FAKE_STORPORT_H

/* What StorPortInitialize registered (the kit's HwFindAdapter trampoline among them). */
extern PHW_FIND_ADAPTER FakeSpFindAdapter;
extern PHW_INITIALIZE FakeSpHwInitialize;
extern PHW_STARTIO FakeSpStartIo;
extern PHW_INTERRUPT FakeSpInterrupt;
extern ULONG FakeSpDeviceExtensionSize;
extern ULONG FakeSpSrbExtensionSize;
/* What the miniport asked for later. */
extern PHW_PASSIVE_INITIALIZE_ROUTINE FakeSpPassiveInitialize;
extern ULONG FakeSpCompleted; /* SRBs completed with RequestComplete */
extern KIRQL FakeSpDirql;     /* the level of the InterruptLock and HwStorInterrupt */
extern ULONG FakeSpUnloaded;  /* the unload routine StorPortInitialize installed ran */

int FakeSpRunDpcs(void); /* runs the DPCs StorPortIssueDpc queued (at DISPATCH_LEVEL); how many */

#endif
