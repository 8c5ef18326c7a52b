/* Sets O_APPEND on its standard output after seeking to the start: the
 * next write must land at the end of the file, as Linux does. */
#include <fcntl.h>
#include <unistd.h>

int main(void) {
  lseek(1, 0, SEEK_SET);
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND);
  return write(1, "appended\n", 9) == 9 ? 0 : 1;
}
