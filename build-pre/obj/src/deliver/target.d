build-pre/obj/src/deliver/target.o: src/deliver/target.c \
 src/deliver/../util/util.h src/deliver/dns.h src/deliver/target.h
src/deliver/../util/util.h:
src/deliver/dns.h:
src/deliver/target.h:
