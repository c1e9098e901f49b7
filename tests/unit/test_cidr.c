/* test_cidr.c — lib/cidr.c (trusted ranges for proxy_protocol) and the
 * address keys of the per-address limits in lib/ratelimit.c: IPv4 per
 * address, IPv6 per /64, an IPv4-mapped address as its IPv4 address. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cidr.h"
#include "ratelimit.h"
#include "test.h"

static struct sockaddr_storage sa_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) v6->sin6_family = AF_INET6;
    return ss;
}

static int matches(const char *range, const char *addr)
{
    cidr_t c;
    const char *why = NULL;
    if (cidr_parse(range, &c, &why) != 0) return -1;
    struct sockaddr_storage ss = sa_of(addr);
    return cidr_match_any(&c, 1, (const struct sockaddr *)&ss);
}

static void test_parse(void)
{
    cidr_t c;
    const char *why = NULL;
    CHECK_INT(cidr_parse("10.0.0.0/8", &c, &why), 0);
    CHECK_INT(c.family, AF_INET);
    CHECK_INT(c.bits, 8);
    CHECK_INT(cidr_parse("192.0.2.7", &c, &why), 0);
    CHECK_INT(c.bits, 32);
    CHECK_INT(cidr_parse("::1", &c, &why), 0);
    CHECK_INT(c.family, AF_INET6);
    CHECK_INT(c.bits, 128);
    CHECK_INT(cidr_parse("fd00::/8", &c, &why), 0);
    CHECK_INT(cidr_parse("0.0.0.0/0", &c, &why), 0);
    CHECK_INT(cidr_parse("::/0", &c, &why), 0);
    static const char *const bad[] = {
        "", "/8", "10.0.0.1/8", "10.0.0.0/33", "fd00::/129", "fd00::1/8", "10.0.0.0/", "10.0.0.0/08",
        "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0", "[::1]", "fe80::1%eth0", "host.example",
        "10.0.0.0/1000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CHECK_MSG(cidr_parse(bad[i], &c, &why) == -1 && why, "\"%s\" accepted", bad[i]);
    }
}

static void test_match(void)
{
    CHECK_INT(matches("10.0.0.0/8", "10.255.1.2"), 1);
    CHECK_INT(matches("10.0.0.0/8", "11.0.0.1"), 0);
    CHECK_INT(matches("172.16.0.0/12", "172.31.255.255"), 1);
    CHECK_INT(matches("172.16.0.0/12", "172.32.0.0"), 0);
    CHECK_INT(matches("127.0.0.2", "127.0.0.2"), 1);
    CHECK_INT(matches("127.0.0.2", "127.0.0.1"), 0);
    CHECK_INT(matches("0.0.0.0/0", "203.0.113.9"), 1);
    CHECK_INT(matches("0.0.0.0/0", "2001:db8::1"), 0);      /* families do not mix */
    CHECK_INT(matches("fd00::/8", "fd12:3456::1"), 1);
    CHECK_INT(matches("fd00::/8", "fe00::1"), 0);
    CHECK_INT(matches("2001:db8:1:2::/63", "2001:db8:1:3::9"), 1);
    CHECK_INT(matches("2001:db8:1:2::/63", "2001:db8:1:4::9"), 0);
    /* A dual-stack listener's IPv4 client: matched by its IPv4 range. */
    CHECK_INT(matches("10.0.0.0/8", "::ffff:10.1.2.3"), 1);
    CHECK_INT(matches("::ffff:0:0/96", "::ffff:10.1.2.3"), 0);
    cidr_t two[2];
    const char *why;
    CHECK_INT(cidr_parse("192.0.2.0/24", &two[0], &why), 0);
    CHECK_INT(cidr_parse("2001:db8::/32", &two[1], &why), 0);
    struct sockaddr_storage a = sa_of("2001:db8::5"), b = sa_of("198.51.100.1");
    CHECK_INT(cidr_match_any(two, 2, (const struct sockaddr *)&a), 1);
    CHECK_INT(cidr_match_any(two, 2, (const struct sockaddr *)&b), 0);
    struct sockaddr unix_sa = { .sa_family = AF_UNIX };
    CHECK_INT(cidr_match_any(two, 2, &unix_sa), 0);
}

static ip_entry_t *entry(ip_table_t *t, const char *addr)
{
    struct sockaddr_storage ss = sa_of(addr);
    return ip_table_get(t, (const struct sockaddr *)&ss);
}

static void test_address_keys(void)
{
    ip_table_t t;
    memset(&t, 0, sizeof t);
    ip_entry_t *a = entry(&t, "2001:db8:1:2::1");
    int ok = a == entry(&t, "2001:db8:1:2:ffff:ffff:ffff:ffff") &&    /* one /64 */
             a != entry(&t, "2001:db8:1:3::1") &&
             entry(&t, "192.0.2.1") != entry(&t, "192.0.2.2") &&       /* IPv4 per address */
             entry(&t, "192.0.2.1") == entry(&t, "::ffff:192.0.2.1") && /* mapped = IPv4 */
             entry(&t, "::ffff:192.0.2.1") != entry(&t, "::ffff:192.0.2.2");
    size_t n = ip_table_size(&t);
    ip_table_free(&t);
    CHECK(ok);
    CHECK_INT(n, 4);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_match);
    RUN(test_address_keys);
    return test_report("cidr");
}
