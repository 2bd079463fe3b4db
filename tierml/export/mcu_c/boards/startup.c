/* Cortex-M start-up for QEMU's mps2 boards: vector table at 0x0, FPU on (M4F), .data copied, .bss cleared,
 * semihosting initialised, then exit(main()) so main's return value becomes QEMU's exit status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void initialise_monitor_handles(void);
extern int main(void);

void tml_reset(void);
void tml_fault(void);

void _init(void) {}  /* -nostartfiles: __libc_init_array still calls these */
void _fini(void) {}

__attribute__((section(".vectors"), used)) void (*const tml_vectors[16])(void) = {
    (void (*)(void))&_estack, tml_reset, tml_fault, tml_fault, tml_fault, tml_fault, tml_fault, 0, 0, 0, 0,
    tml_fault, tml_fault, 0, tml_fault, tml_fault,
};

void tml_fault(void)
{
    exit(100);  /* any fault: a distinct exit status instead of a lock-up */
}

void tml_reset(void)
{
#if defined(__ARM_FP)
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;  /* CP10 and CP11 full access, before the first FP instruction */
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    initialise_monitor_handles();
    exit(main());
}
