build-pre/obj/src/util/clientkey.o: src/util/clientkey.c \
 src/util/clientkey.h src/util/util.h
src/util/clientkey.h:
src/util/util.h:
