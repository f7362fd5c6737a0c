build-post/obj/src/smtp/smtp_param.o: src/smtp/smtp_param.c \
 src/smtp/smtp_int.h src/smtp/smtp.h src/smtp/../addr/addr.h \
 src/smtp/../util/util.h
src/smtp/smtp_int.h:
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
