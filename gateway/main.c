/* main.c — the wsgw binary.  The default behaviour is the envelope protocol
 * (join, leave, emit to broadcast / all / room / conn), built into the
 * library; wsgw_run() adds the process around it (run.c). */
#include "wsgw.h"

int main(int argc, char **argv)
{
    return wsgw_run(argc, argv, NULL, NULL);
}
