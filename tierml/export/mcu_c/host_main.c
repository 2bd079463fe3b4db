/* Host test driver: int8 inputs from stdin (MODEL_INPUT_SIZE bytes each), outputs to stdout. */
#include <stdio.h>

#include "model.h"

int main(void)
{
    int8_t input[MODEL_INPUT_SIZE];
    int8_t output[MODEL_OUTPUT_SIZE];
    while (fread(input, 1, sizeof input, stdin) == sizeof input) {
        if (model_invoke(input, output) != 0 || fwrite(output, 1, sizeof output, stdout) != sizeof output) {
            return 1;
        }
    }
    return ferror(stdin) ? 1 : 0;
}
