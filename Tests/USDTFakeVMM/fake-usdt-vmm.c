// A stand-in VMM with QEMU's USDT probes (provider qemu, semaphores as a dtrace build has
// them) for USDTProbeSessionTests. A worker thread, started before any probe is armed,
// reads commands from the FIFO named by argv[1]: `w` fires pci_cfg_write, `c`
// handle_qmp_command, `r` the System reset bracket, `s` prints the semaphore.
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>

__extension__ unsigned short qemu_pci_cfg_write_semaphore __attribute__((unused)) __attribute__((section(".probes")));
__extension__ unsigned short qemu_handle_qmp_command_semaphore __attribute__((unused)) __attribute__((section(".probes")));
__extension__ unsigned short qemu_resettable_phase_enter_begin_semaphore __attribute__((unused)) __attribute__((section(".probes")));
__extension__ unsigned short qemu_resettable_phase_exit_end_semaphore __attribute__((unused)) __attribute__((section(".probes")));

static const char *fifo;
static volatile const char *model = "pcie-root-port";
static volatile const char *system_type = "System";
static volatile const char *request = "{\"execute\": \"query-status\"}";

static void *worker(void *unused) {
    (void)unused;
    FILE *commands = fopen(fifo, "r");
    int c;
    while (commands && (c = fgetc(commands)) != EOF) {
        switch (c) {
        case 'w':
            if (qemu_pci_cfg_write_semaphore)
                STAP_PROBE6(qemu, pci_cfg_write, model, (unsigned)0, (unsigned)0x1c, (unsigned)0, (unsigned)0x3e, (unsigned)0x40);
            break;
        case 'c':
            if (qemu_handle_qmp_command_semaphore) STAP_PROBE2(qemu, handle_qmp_command, (void *)0x5678, request);
            break;
        case 'r':
            if (qemu_resettable_phase_enter_begin_semaphore)
                STAP_PROBE4(qemu, resettable_phase_enter_begin, (void *)0x1234, system_type, (unsigned)0, 0);
            if (qemu_resettable_phase_exit_end_semaphore)
                STAP_PROBE3(qemu, resettable_phase_exit_end, (void *)0x1234, system_type, (unsigned)0);
            break;
        case 's':
            printf("semaphore %u\n", qemu_pci_cfg_write_semaphore);
            fflush(stdout);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    fifo = argv[1];
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    pthread_join(thread, NULL);
    return 0;
}
