/* The smallest useful program: exits 0. Run by fork_exec. */
int main(void) { return 0; }
