build-pre/obj/src/smtp/smtp_server.o: src/smtp/smtp_server.c \
 src/smtp/smtp.h src/smtp/../addr/addr.h src/smtp/../util/util.h
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
