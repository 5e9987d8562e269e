#include "FuzzMain.h"

/* SwiftPM links every executable target with `--defsym main=<Target>_main` so that tests can
   import executables. A libFuzzer target has no Swift main (-parse-as-library), so that
   symbol would be missing: each one here starts libFuzzer's driver on the target's
   LLVMFuzzerTestOneInput (defined by @_cdecl in the target's Swift file). Every executable
   links exactly one of them; the others are never referenced. */

int FuzzSTUN_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
int FuzzDemux_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
int FuzzRTP_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
int FuzzSDP_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
int FuzzSignaling_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
