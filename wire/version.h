/*
 * version.h - the release of shmbus that this source tree is, shared by
 * shmbusd and the shmbus command so that both report the same version
 * (the Makefile's VERSION, used for the shared library's file name and
 * shmbus.pc, must match it).
 */
#ifndef SB_WIRE_VERSION_H
#define SB_WIRE_VERSION_H

#define SB_VERSION "0.1.0"

#endif
