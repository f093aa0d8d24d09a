// libarchive (Debian libarchive-dev): reads ISO 9660, tar (plain, gzip, xz…), cpio and more.
#include <archive.h>
#include <archive_entry.h>
