#ifndef FUZZMAIN_H
#define FUZZMAIN_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (compiler-rt FuzzerInterface.h). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int FuzzSTUN_main(int argc, char **argv);
int FuzzDemux_main(int argc, char **argv);
int FuzzRTP_main(int argc, char **argv);
int FuzzSDP_main(int argc, char **argv);
int FuzzSignaling_main(int argc, char **argv);
#endif
