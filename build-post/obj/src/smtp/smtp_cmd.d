build-post/obj/src/smtp/smtp_cmd.o: src/smtp/smtp_cmd.c \
 src/smtp/smtp_int.h src/smtp/smtp.h src/smtp/../addr/addr.h \
 src/smtp/../util/util.h
src/smtp/smtp_int.h:
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
