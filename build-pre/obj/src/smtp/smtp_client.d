build-pre/obj/src/smtp/smtp_client.o: src/smtp/smtp_client.c \
 src/smtp/smtp.h src/smtp/../addr/addr.h src/smtp/../util/util.h
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
