#include "ctx.h"
int main(void){return 0;}
