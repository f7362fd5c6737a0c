build-pre/obj/src/deliver/dns.o: src/deliver/dns.c src/deliver/dns.h \
 src/util/util.h
src/deliver/dns.h:
src/util/util.h:
